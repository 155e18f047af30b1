"""The refund-abuse ledger's domain core. It never imports the web framework."""
