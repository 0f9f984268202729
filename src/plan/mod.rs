//! Plans: desired state vs. the store's latest generation vs. the disk.
