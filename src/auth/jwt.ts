// Bearer JWTs checked against an issuer's JWKS (the jose library): signature, issuer, audience, expiry with clock skew.
import {type JWTPayload, createRemoteJWKSet, errors, jwtVerify} from 'jose'

import {type JwtSettings, SCOPES, type Scope} from './config.js'

export interface VerifiedToken {
  subject: string
  scopes: Scope[]
}

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']

export class JwtVerifier {
  private readonly keySet: ReturnType<typeof createRemoteJWKSet>

  constructor(private readonly settings: JwtSettings) {
    // The key set is fetched on first use and again when a token names a key it has not seen (at most every 30 s).
    this.keySet = createRemoteJWKSet(new URL(settings.jwksUrl), {timeoutDuration: 5000, cooldownDuration: 30_000})
  }

  /** The token's subject and scopes, or why it is refused (a message safe to send back: it never holds the token). */
  async verify(token: string): Promise<VerifiedToken | {problem: string}> {
    let payload: JWTPayload
    try {
      ;({payload} = await jwtVerify(token, this.keySet, {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        clockTolerance: this.settings.clockSkewSeconds,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp', 'sub'],
      }))
    } catch (error) {
      return {problem: describe(error)}
    }
    return {subject: payload.sub!, scopes: scopesOf(payload) ?? this.settings.defaultScopes}
  }
}

function scopesOf(payload: JWTPayload): Scope[] | undefined {
  const claim = payload.scope ?? payload.scp
  const named = typeof claim === 'string' ? claim.split(' ') : Array.isArray(claim) ? claim : undefined
  return named?.filter((s): s is Scope => SCOPES.includes(s as Scope))
}

function describe(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the token has expired'
  if (error instanceof errors.JWTClaimValidationFailed) return `the token's "${error.claim}" claim is not accepted`
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the token signature does not verify'
  if (error instanceof errors.JWKSNoMatchingKey) return "no key of the issuer's key set signed the token"
  if (error instanceof errors.JWKSTimeout || (error instanceof errors.JOSEError && error.code === 'ERR_JWKS_INVALID'))
    return "the issuer's key set could not be fetched"
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'the token is not a valid JWT'
  if (error instanceof errors.JOSEAlgNotAllowed) return "the token's algorithm is not accepted"
  return 'the token could not be verified'
}
