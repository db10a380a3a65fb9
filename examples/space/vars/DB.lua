-- Database tier: PostgreSQL gets a quarter of the memory as shared buffers.
IMAGE = "db@7"
local mib = (facts.memory and facts.memory.total_bytes or 0) // (1024 * 1024)
PG_SHARED_BUFFERS = string.format("%dMB", mib // 4)
table.insert(PACKAGES, "postgresql-15")
