-- The top-of-rack switch a node is cabled to names its rack (LLDP on any
-- NIC): tor-a1 -> RACK_A1. A rule may also return its classes.
for _, nic in ipairs(facts.nics or {}) do
  local switch = nic.lldp and nic.lldp.system_name
  local rack = switch and switch:match("^tor%-(%w+)$")
  if rack then return "RACK_" .. rack:upper() end
end
