"""The hosts file: its entries, the marked block, safe and atomic writes under a lock. Standard library only,
usable without the rest of the package; it imports nothing of ours from outside this folder."""
