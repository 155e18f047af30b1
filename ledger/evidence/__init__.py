"""Evidence fingerprints: PDQ hashes of photos behind reports and of members' listing
photos, kept under a keyed transform and matched by Hamming distance (docs/evidence.md)."""
