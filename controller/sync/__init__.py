"""From what the cluster holds to the block: the state of the watched objects, the planner, the writer that
syncs the hosts file, and the reports (log lines, Events) of each sync."""
