# cordon-server postinst (deb: configure; rpm %post: 1 install, 2 upgrade).
case "$1" in
configure | 1 | 2) ;;
*) exit 0 ;;
esac

# The server's own user and data dir. useradd/groupadd come with passwd
# (Debian, essential) and shadow-utils (RPM distributions).
if ! getent group cordon >/dev/null; then
	groupadd --system cordon
fi
if ! getent passwd cordon >/dev/null; then
	useradd --system --gid cordon --home-dir /var/lib/cordon --no-create-home \
		--shell /usr/sbin/nologin --comment "Cordon MDM server" cordon
fi
mkdir -p /var/lib/cordon
chown cordon:cordon /var/lib/cordon
chmod 0750 /var/lib/cordon

# The config may hold an SMTP URL with its password: root writes it,
# the server's group reads it, nobody else.
if [ -f /etc/cordon/server.yaml ]; then
	chgrp cordon /etc/cordon/server.yaml
	chmod 0640 /etc/cordon/server.yaml
fi

upgrade=
if [ "$1" = 2 ] || { [ "$1" = configure ] && [ -n "$2" ]; }; then
	upgrade=1
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	systemctl enable cordon-server.service
	# The first start creates the CA and the server certificate for the
	# configured hostnames: it waits for the admin to set them. An upgrade
	# restarts a running server on the new binary.
	if [ -n "$upgrade" ]; then
		systemctl try-restart cordon-server.service
	fi
fi
if [ -z "$upgrade" ]; then
	echo "cordon-server: set hostname in /etc/cordon/server.yaml, then: systemctl start cordon-server"
fi
exit 0
