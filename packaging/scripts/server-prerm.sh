# cordon-server prerm (deb: remove, upgrade, ...; rpm %preun: 0 erase,
# 1 upgrade). Stop the server only when the package goes away.
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now cordon-server.service || true
	fi
	;;
esac
exit 0
