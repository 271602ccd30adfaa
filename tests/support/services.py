"""Where scripts/services runs the real servers the tests talk to (all on 127.0.0.1)."""

from __future__ import annotations

HOST = "127.0.0.1"
NGINX_HTTP = 28480   # nginx: a test page, /status/503 answers 503
NGINX_HTTPS = 28443  # the same over TLS, self-signed CN=localhost, 30 days
SNMP = 16161         # snmpd (udp): v2c "public", v3 user wkuser
SSH = 2222           # sshd: root with the key in .services/ssh
IPERF3 = 15201       # iperf3 server
