-- Rack A1: its own gateway and NTP relay.
GATEWAY = "10.1.1.1"
NTP_SERVER = "10.1.1.123"
