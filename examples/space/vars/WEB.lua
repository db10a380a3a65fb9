-- Web tier.
IMAGE = "web@3"
NGINX_WORKERS = (facts.cpu and facts.cpu.threads) or 2
table.insert(PACKAGES, "nginx")
