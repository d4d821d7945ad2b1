/**
 * Credits, by the old service's business rule. No ledger exists in this deployment: the cost is reported
 * (`credits_required`) and nothing is deducted (`credits_deducted: 0`). A real ledger implements CreditLedger.
 */

/** Cost of a triage by photo count: ≤100 → 1, ≤500 → 3, ≤1000 → 5, ≤2000 → 8, else 10. */
export function triageCost(photos: number): number {
  if (photos <= 100) return 1;
  if (photos <= 500) return 3;
  if (photos <= 1000) return 5;
  if (photos <= 2000) return 8;
  return 10;
}

/** `proceed` costs one credit per photo handed on. */
export function proceedCost(photos: number): number {
  return photos;
}

export interface CreditLedger {
  /** Deducts `amount` for `reason`; resolves to the credits actually deducted. */
  charge(userId: string, amount: number, reason: string): Promise<number>;
  /** Gives back what a failed or refused operation was charged. */
  refund(userId: string, amount: number, reason: string): Promise<void>;
}

/** The deployment without a ledger: everything is free, and says so (0 deducted). */
export const NO_LEDGER: CreditLedger = {
  async charge() {
    return 0;
  },
  async refund() {},
};
