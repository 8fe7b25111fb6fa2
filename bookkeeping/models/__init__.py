"""The domain in the accountant's words. One module per topic; everything is importable from here."""

from .audit import AuditEvent
from .companies import Company, Country
from .dispatch import DispatchLease
from .mappings import DEFAULT_KEY, KINDS_WITHOUT_ACCOUNT, AccountMapping, MappingKind, PaymentMethod, PaymentMethodList
from .plans import (
    Account,
    AccountKind,
    AccountPlan,
    CostCentre,
    CostCentreSetting,
    FinancialYear,
    VatCode,
    VoucherSeries,
)
from .preferences import StaffPreference
from .vouchers import TargetSystem, Voucher, VoucherKind, VoucherRow, VoucherState

__all__ = [
    "DEFAULT_KEY",
    "KINDS_WITHOUT_ACCOUNT",
    "Account",
    "AccountKind",
    "AccountMapping",
    "AccountPlan",
    "AuditEvent",
    "Company",
    "CostCentre",
    "CostCentreSetting",
    "Country",
    "DispatchLease",
    "FinancialYear",
    "MappingKind",
    "PaymentMethod",
    "PaymentMethodList",
    "StaffPreference",
    "TargetSystem",
    "VatCode",
    "Voucher",
    "VoucherKind",
    "VoucherRow",
    "VoucherSeries",
    "VoucherState",
]
