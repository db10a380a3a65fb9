-- Canary hosts log more and carry debugging tools.
LOG_LEVEL = "debug"
table.insert(PACKAGES, "strace")
table.insert(PACKAGES, "tcpdump")
