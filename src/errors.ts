// One error family for the whole tool: a stable code, an exit code and a hint naming the next command.

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  inProgress: 3,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export interface MlopsErrorOptions {
  hint?: string
  exitCode?: ExitCodeValue
  details?: unknown
  cause?: unknown
}

export class MlopsError extends Error {
  readonly code: string
  readonly hint?: string
  readonly exitCode: ExitCodeValue
  readonly details?: unknown

  constructor(code: string, message: string, options: MlopsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'MlopsError'
    this.code = code
    this.hint = options.hint
    this.exitCode = options.exitCode ?? ExitCode.failed
    this.details = options.details
  }

  toJSON(): {code: string; message: string; hint?: string; details?: unknown} {
    return {code: this.code, message: this.message, hint: this.hint, details: this.details}
  }
}

/** A mistake in how the tool was called or configured: exit code 2. */
export class UsageError extends MlopsError {
  constructor(code: string, message: string, options: Omit<MlopsErrorOptions, 'exitCode'> = {}) {
    super(code, message, {...options, exitCode: ExitCode.usage})
    this.name = 'UsageError'
  }
}

export interface ConfigIssue {
  /** Field path in the user's words, e.g. `deploy.canary.steps[2]`. */
  path: string
  message: string
}

export class ConfigError extends UsageError {
  readonly issues: ConfigIssue[]

  constructor(file: string, issues: ConfigIssue[], hint?: string) {
    const lines = issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n')
    super('CONFIG_INVALID', `${file} is not valid:\n${lines}`, {
      hint: hint ?? `Fix the fields above in ${file}, then run the command again.`,
      details: {file, issues},
    })
    this.name = 'ConfigError'
    this.issues = issues
  }
}

export function isMlopsError(error: unknown): error is MlopsError {
  return error instanceof MlopsError
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
