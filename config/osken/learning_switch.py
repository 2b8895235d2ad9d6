"""A learning switch for vxtund segments, as an os-ken (python3-os-ken) OpenFlow 1.3 app.

Start it with Debian's osken-manager and point each segment's `[openflow] controllers` at it:

    osken-manager --ofp-listen-host 192.0.2.10 --ofp-tcp-listen-port 6653 learning_switch.py

What it does, per datapath (each vxtund segment has its own datapath id):
  * on connect, installs the table-miss flow: priority 0, everything to the controller;
  * on PACKET_IN, learns the source MAC on the ingress port; for a destination it knows, it
    installs a flow (in_port, eth_src, eth_dst -> output) and sends the frame there, otherwise
    it floods the frame with PACKET_OUT;
  * logs connections, packet-ins and FLOW_REMOVED messages.

Environment (all optional):
  LEARNING_SWITCH_IDLE  idle_timeout of learnt flows in seconds (default 60); learnt flows ask
                        for FLOW_REMOVED (send_flow_rem)
  LEARNING_SWITCH_LOG   append one line per event to this file (the tests read it)
"""

import os
import time

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib.packet import ethernet, packet
from os_ken.ofproto import ofproto_v1_3

IDLE = int(os.environ.get("LEARNING_SWITCH_IDLE", "60"))
LOG = os.environ.get("LEARNING_SWITCH_LOG")


def note(line):
    if LOG:
        with open(LOG, "a") as f:
            f.write("%.3f %s\n" % (time.time(), line))


class LearningSwitch(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mac_to_port = {}

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        actions = [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)]
        self.add_flow(dp, 0, parser.OFPMatch(), actions, idle=0, flags=0)
        note("connected dpid=%016x" % dp.id)

    def add_flow(self, dp, priority, match, actions, idle, flags):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
        dp.send_msg(
            parser.OFPFlowMod(
                datapath=dp,
                priority=priority,
                match=match,
                instructions=inst,
                idle_timeout=idle,
                flags=flags,
            )
        )

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        in_port = msg.match["in_port"]
        eth = packet.Packet(msg.data).get_protocol(ethernet.ethernet)
        if eth is None:
            return
        note("packet_in dpid=%016x in_port=%d reason=%d len=%d" % (dp.id, in_port, msg.reason, len(msg.data)))
        table = self.mac_to_port.setdefault(dp.id, {})
        table[eth.src] = in_port
        out_port = table.get(eth.dst, ofp.OFPP_FLOOD)
        actions = [parser.OFPActionOutput(out_port)]
        if out_port != ofp.OFPP_FLOOD:
            match = parser.OFPMatch(in_port=in_port, eth_src=eth.src, eth_dst=eth.dst)
            self.add_flow(dp, 1, match, actions, idle=IDLE, flags=ofp.OFPFF_SEND_FLOW_REM)
        dp.send_msg(
            parser.OFPPacketOut(
                datapath=dp,
                buffer_id=ofp.OFP_NO_BUFFER,
                in_port=in_port,
                actions=actions,
                data=msg.data,
            )
        )

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def flow_removed(self, ev):
        msg = ev.msg
        dp = msg.datapath
        reasons = {
            dp.ofproto.OFPRR_IDLE_TIMEOUT: "IDLE_TIMEOUT",
            dp.ofproto.OFPRR_HARD_TIMEOUT: "HARD_TIMEOUT",
            dp.ofproto.OFPRR_DELETE: "DELETE",
        }
        note(
            "flow_removed dpid=%016x reason=%s packets=%d eth_dst=%s"
            % (dp.id, reasons.get(msg.reason, msg.reason), msg.packet_count, msg.match.get("eth_dst"))
        )
        # The learnt port may be stale: forget it so that the next frame is flooded again.
        self.mac_to_port.get(dp.id, {}).pop(msg.match.get("eth_dst"), None)
