-- Every node. Later classes override these, or extend them.
IMAGE = "base@1"
HOSTNAME = node.hostname
TIMEZONE = "UTC"
NTP_SERVER = "10.0.0.123"
DNS_SERVER = "10.0.0.53"
GATEWAY = "10.0.0.1"
PACKAGES = {"openssh-server", "chrony", "prometheus-node-exporter"}
CONSOLE = "ttyS0,115200"
LOG_LEVEL = "info"
