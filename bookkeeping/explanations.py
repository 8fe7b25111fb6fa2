"""What a stored error code means and what to do about it, in plain words (the error inbox).

The pre-flight codes are Kontera's own (``rules``); a target's codes are explained by its connector
(``explain_error(code)``); anything else gets the general advice for its target.
"""

from __future__ import annotations

from integrations import registry
from wording import Msg

PREFLIGHT = {
    "too_few_rows": (Msg("The voucher has fewer than two rows."),
                     Msg("Add the missing row (debit or credit) and send again.")),
    "negative_amount": (Msg("A row has a negative amount."),
                        Msg("Move the amount to the other column (debit ↔ credit) and send again.")),
    "too_many_decimals": (Msg("An amount has more than two decimals."), Msg("Round it to öre/øre and send again.")),
    "debit_and_credit": (Msg("A row has both a debit and a credit."), Msg("Split it into two rows.")),
    "zero_row": (Msg("A row has no amount."), Msg("Remove the row or give it its amount.")),
    "unbalanced": (Msg("Debit and credit differ."), Msg("Correct the rows in the source and import again.")),
    "unknown_account": (Msg("An account is not in the target's chart of accounts."),
                        Msg("Add the account in the target (or map the source value to an existing account), "
                            "import the master data again: the voucher then goes out by itself.")),
    "inactive_account": (Msg("An account is inactive in the target."),
                         Msg("Activate it in the target, or use another account; then import the master data again.")),
    "balance_account": (Msg("A category is a balance-sheet account; Dinero takes only profit-and-loss accounts."),
                        Msg("Choose an expense account as the category and sync again.")),
    "cost_centre_required": (Msg("An account requires a cost centre and the row has none."),
                             Msg("Add the cost centre in the source, or change the account's setting in the target.")),
    "cost_centre_not_allowed": (Msg("An account does not allow a cost centre."),
                                Msg("Remove the cost centre from the row, or allow it on the account in the target.")),
    "unknown_cost_centre": (Msg("A cost centre does not exist in the target."),
                            Msg("Create it in the target and import the master data again.")),
    "inactive_cost_centre": (Msg("A cost centre is inactive in the target."),
                             Msg("Activate it in the target and import the master data again.")),
    "no_series": (Msg("The voucher has no voucher series."), Msg("Give it a series, or set the company's default.")),
    "unknown_series": (Msg("The voucher series does not exist in the target."),
                       Msg("Create the series in the target (or choose another) and import the master data again.")),
    "series_not_manual": (Msg("The voucher series does not allow manual vouchers."),
                          Msg("Tick 'Manuell kontering' on the series in Fortnox and import the master data again.")),
    "no_financial_year": (Msg("No financial year covers the voucher's date."),
                          Msg("Create the financial year in the target and import the master data again.")),
    "locked_period": (Msg("The date is inside the target's locked period."),
                      Msg("Open the period in the target, or let the integration post on the first open date.")),
    "no_account_plan": (Msg("The target's chart of accounts has not been imported."),
                        Msg("Import the master data on the integration page.")),
    "no_dkk_amount": (Msg("A foreign-currency document has no DKK amount."),
                      Msg("Enter the DKK amount the bank drew on the document.")),
}

GENERAL = (Msg("The target refused the voucher; its own words are shown on each voucher."),
           Msg("Correct the cause in the target or on the voucher, then send again — or mark it handled outside "
               "Kontera with a note if it was booked by hand."))
NO_CODE = (Msg("Not sent, without an error code (e.g. given up after repeated attempts)."),
           Msg("Read the reason on the voucher; send again once the target answers, or mark it handled outside "
               "Kontera."))


def explain(system: str, code: str) -> tuple[str, str]:
    """(what it means, what to do) for a failure of ``system`` with the stored ``code``."""
    if code in PREFLIGHT:
        return PREFLIGHT[code]
    try:
        explain_error = getattr(registry.connector_class(system), "explain_error", None)
    except (LookupError, ImportError):
        explain_error = None
    known = explain_error(code) if explain_error and code else None
    if known:
        return known
    return GENERAL if code else NO_CODE
