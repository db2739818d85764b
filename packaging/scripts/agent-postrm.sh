# cordon-agent postrm. The state (/var/lib/cordon-agent: the device's
# identity and key) is the enrollment's, not the package's: remove and
# purge keep it, so installing again keeps the device.
case "$1" in
remove | purge | 0)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	;;
esac
exit 0
