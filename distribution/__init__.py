"""The distribution domain: scenes, binding, commissions, ledger, withdrawals.

Pure rules only. Services load snapshots, ask these functions what to do, and
write the answer with atomic conditional updates; nothing here does I/O.
"""
