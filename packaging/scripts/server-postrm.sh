# cordon-server postrm. remove (and rpm -e) keeps the data, the config
# and the cordon user. purge (deb) asks nothing and removes what the
# package put there: dpkg deletes the conffile /etc/cordon/server.yaml;
# this removes /etc/cordon if it is then empty, and /var/lib/cordon and
# the cordon user and group only if the data dir is empty. A data dir
# with the CA, keys and database in it is never deleted, and neither is
# the user that owns it (a later user given the same uid would own the
# CA): the message says how to remove both by hand.
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	;;
purge)
	rmdir /etc/cordon 2>/dev/null || true
	if [ -d /var/lib/cordon ] && ! rmdir /var/lib/cordon 2>/dev/null; then
		echo "cordon-server: kept /var/lib/cordon (CA, keys, database) and the cordon user that owns it;" \
			"to delete them: rm -rf /var/lib/cordon && userdel cordon" >&2
		exit 0
	fi
	if getent passwd cordon >/dev/null; then
		userdel cordon || true
	fi
	if getent group cordon >/dev/null; then
		groupdel cordon || true
	fi
	;;
esac
exit 0
