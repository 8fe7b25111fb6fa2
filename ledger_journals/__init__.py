"""Property-ledger journals (per owner) imported from SIE 4 or CSV, selected, pre-flight checked and
pushed to Fortnox as vouchers. A journal is a core ``Voucher`` of kind ``journal``: no tables of its own."""
