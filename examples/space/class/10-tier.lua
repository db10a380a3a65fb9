-- The tier comes from the hostname: web01 is a web server, db02 a database.
local host = node.hostname
if host:match("^web%d+$") then
  add("WEB")
elseif host:match("^db%d+$") then
  add("DB")
end
