"""Prepaid claims: orders that hold stock while a payment provider takes the money, refunds,
settlements to merchants and the books that tie them together (docs/payments.md)."""
