"""Reports of confirmed refund abuse: filing, notice, withdrawal, retention."""
