// Synthetic credit applicants and their default labels, drawn from a known logistic ground truth.
import type {Random} from './random.js'

export const REGIONS = ['north', 'south', 'east', 'west'] as const
export const EMPLOYMENT = ['employed', 'self_employed', 'unemployed', 'student'] as const

/** One applicant as a client sends it: income may be missing (null). */
export interface Applicant {
  age: number
  income: number | null
  debt_ratio: number
  credit_history_months: number
  region: string
  employment: string
  has_prior_default: boolean
}

/** How live data differs from training data: what `data/current-shifted.csv` simulates for the drift monitor. */
export interface Shift {
  incomeFactor: number
  debtFactor: number
  /** A region training never saw, and the share of applicants from it. */
  newRegion?: {name: string; share: number}
}

export const NO_SHIFT: Shift = {incomeFactor: 1, debtFactor: 1}
export const LIVE_SHIFT: Shift = {incomeFactor: 0.75, debtFactor: 1.25, newRegion: {name: 'central', share: 0.12}}

const BASE_INCOME: Record<string, number> = {
  employed: 52_000,
  self_employed: 58_000,
  unemployed: 21_000,
  student: 15_000,
}
const EMPLOYMENT_RISK: Record<string, number> = {employed: 0, self_employed: 0.3, unemployed: 0.9, student: 0.4}
const REGION_RISK: Record<string, number> = {north: -0.1, south: 0.2, east: 0, west: 0.05, central: 0.1}
const MISSING_INCOME = 0.04

function clamp(x: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, x))
}

function round(x: number, decimals: number): number {
  return Number(x.toFixed(decimals))
}

export function drawApplicant(random: Random, shift: Shift = NO_SHIFT): {applicant: Applicant; trueIncome: number} {
  const age = clamp(Math.round(random.normal(41, 12)), 18, 80)
  const employment =
    age < 25 ? random.pick(EMPLOYMENT, [0.45, 0.08, 0.12, 0.35]) : random.pick(EMPLOYMENT, [0.72, 0.14, 0.09, 0.05])
  const ageFactor = 1 + 0.012 * (Math.min(age, 55) - 40)
  const trueIncome = Math.max(
    3_000,
    Math.round((BASE_INCOME[employment] * ageFactor * Math.exp(random.normal(0, 0.5)) * shift.incomeFactor) / 100) *
      100,
  )
  const debtRatio = round(Math.exp(random.normal(Math.log(0.28), 0.55)) * shift.debtFactor, 3)
  const creditHistoryMonths = Math.round((age - 18) * 12 * random.between(0.25, 0.95))
  const regionWeights = [0.3, 0.25, 0.25, 0.2]
  const {newRegion} = shift
  const region = newRegion
    ? random.pick(
        [...REGIONS, newRegion.name],
        [...regionWeights.map((w) => w * (1 - newRegion.share)), newRegion.share],
      )
    : random.pick(REGIONS, regionWeights)
  const hasPriorDefault = random.chance(employment === 'unemployed' ? 0.14 : 0.07)
  const income = random.chance(MISSING_INCOME) ? null : trueIncome
  return {
    applicant: {
      age,
      income,
      debt_ratio: debtRatio,
      credit_history_months: creditHistoryMonths,
      region,
      employment,
      has_prior_default: hasPriorDefault,
    },
    trueIncome,
  }
}

/** The log-odds of default the labels are drawn from; it sees the true income even when the record hides it. */
export function trueLogit(applicant: Applicant, trueIncome: number): number {
  return (
    -1.3 -
    1.1 * Math.log(trueIncome / 45_000) +
    2.6 * (applicant.debt_ratio - 0.3) -
    0.05 * (applicant.credit_history_months / 12 - 8) -
    0.015 * (applicant.age - 40) +
    EMPLOYMENT_RISK[applicant.employment] +
    REGION_RISK[applicant.region] +
    (applicant.has_prior_default ? 1.5 : 0)
  )
}

/** `count` applicants with labels (1 = default): the ground-truth log-odds plus normal noise, then a Bernoulli draw. */
export function drawApplicants(
  random: Random,
  count: number,
  shift: Shift = NO_SHIFT,
): {applicants: Applicant[]; labels: Uint8Array} {
  const applicants: Applicant[] = []
  const labels = new Uint8Array(count)
  for (let i = 0; i < count; i++) {
    const {applicant, trueIncome} = drawApplicant(random, shift)
    const logit = trueLogit(applicant, trueIncome) + random.normal(0, 0.5)
    labels[i] = random.chance(1 / (1 + Math.exp(-logit))) ? 1 : 0
    applicants.push(applicant)
  }
  return {applicants, labels}
}
