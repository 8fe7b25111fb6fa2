"""Books the benchmarks share: a Fortnox company connected to the sandbox (the OAuth code flow, its chart
imported) with journals written in bulk, as an import would leave them (rows and stored totals)."""

from __future__ import annotations


def fortnox_company(sandbox, *, tenant: int, name: str, slug: str, org_number: str, client: str, redirect: str,
                    actor: str = "bench"):
    """A company whose Fortnox integration went through the code flow against ``sandbox`` and imported its plan."""
    from bookkeeping.models import Company
    from bookkeeping.services.plans import chart_import
    from integrations import tokens
    from integrations.models import Integration

    sandbox.add_tenant(tenant, name, org_number)
    company = Company.objects.create(name=name, slug=slug, country="SE", org_number=org_number)
    integration = Integration.objects.create(company=company, system="fortnox", status="active")
    code = sandbox.authorize(client, tenant, tokens.FORTNOX_SCOPES, redirect)
    tokens.fortnox_exchange_code(integration=integration, code=code)
    integration.refresh_from_db()
    chart_import(integration=integration, actor=actor)
    return company


def journals(company, *, count: int, prefix: str, day, varied: bool = True) -> list:
    """``count`` balanced journals of two rows (bank against VAT) in series A, dated ``day``."""
    from bookkeeping.models import Voucher, VoucherRow
    from bookkeeping.services.voucher_totals import vouchers_totals_refresh

    vouchers = Voucher.objects.bulk_create([
        Voucher(company=company, system="fortnox", kind="journal", source_system="ledger",
                source_reference=f"{prefix}-{j}", date=day, description=f"Verifikation {prefix}-{j}", series="A")
        for j in range(count)])
    rows = []
    for v in vouchers:
        amount = 100 + v.pk % 97 if varied else 100
        rows += [VoucherRow(voucher=v, position=0, account=1930, debit=amount, credit=0),
                 VoucherRow(voucher=v, position=1, account=1510, debit=0, credit=amount)]
    VoucherRow.objects.bulk_create(rows)
    vouchers_totals_refresh(voucher_ids=[v.pk for v in vouchers])
    return vouchers
