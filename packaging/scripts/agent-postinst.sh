# cordon-agent postinst (deb: configure; rpm %post: 1 install, 2 upgrade).
case "$1" in
configure | 1 | 2) ;;
*) exit 0 ;;
esac

# An enrollment package (cordon-server package agent) carries the
# server, CA fingerprint and token here: enroll before the service
# starts. A failed enrollment fails the install with the agent's words.
enroll=/etc/cordon/agent-enroll.json
if [ -f "$enroll" ]; then
	if ! out=$(cordon-agent enroll --from-file "$enroll" 2>&1); then
		echo "cordon-agent: enrolling from $enroll failed: $out" >&2
		exit 1
	fi
	[ -z "$out" ] || echo "$out"
fi

# Only where systemd runs (not in a container without init). The unit's
# ConditionPathExists skips the start until the device is enrolled.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	systemctl enable cordon-agent.service
	systemctl restart cordon-agent.service
fi
exit 0
