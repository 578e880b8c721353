"""When posts go out: the database, the queue's state machine, the planner, the daemon
and the command line."""
