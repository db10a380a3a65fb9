-- Web tier.
IMAGE = "web@3"
NGINX_WORKERS = (facts.cpu and facts.cpu.threads) or 2
table.insert(PACKAGES, "nginx")
-- `kiln node update` leaves the site's local nginx tuning alone on each host
-- (a glob or a list of them, beside the defaults: docs/OPERATOR.md).
UPDATE_EXCLUDE = {"/etc/nginx/conf.d/local.conf"}
