"""No tables of its own: a journal is a core ``bookkeeping.Voucher`` of kind ``journal``, its id from the
property system (e.g. ``A25``) the voucher's source reference."""
