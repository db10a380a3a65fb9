-- Hardware classes from the facts the agent reported.

-- An NVIDIA display or 3D controller (PCI vendor 10de, class 03xx) makes a GPU node.
local gpus = 0
for _, dev in ipairs(facts.pci or {}) do
  if dev.vendor == "10de" and dev.class:sub(1, 2) == "03" then gpus = gpus + 1 end
end
if gpus > 0 then
  print(("found %d NVIDIA GPU(s)"):format(gpus))
  add("GPU")
end

if facts.memory and facts.memory.total_bytes >= 128 * 1024^3 then add("BIGMEM") end
