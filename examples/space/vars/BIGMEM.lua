-- 2 MiB huge pages for an eighth of the memory.
HUGEPAGES = facts.memory.total_bytes // 8 // (2 * 1024 * 1024)
