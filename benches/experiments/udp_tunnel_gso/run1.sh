#!/bin/bash
# run1.sh "<recv args>" "<send cmd args>"   one short run: receiver in utB, sender in utA
cd "$(dirname "$0")"
nice -n 10 ip netns exec utB ./udptnl recv $1 > /tmp/ut_recv.txt 2>&1 &
RP=$!
sleep 0.3
nice -n 10 ip netns exec utA ./udptnl $2 2>/tmp/ut_send.err
wait $RP
cat /tmp/ut_recv.txt | grep -v ready
grep -v TUNGETFEATURES /tmp/ut_send.err | head -3
