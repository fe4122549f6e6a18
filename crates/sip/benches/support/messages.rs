// Shared by benches/sip.rs and examples/sip_hotpath.rs (included with include!).

/// A typical carrier INVITE for 14 020 (about 800 bytes with SDP).
const INVITE: &str = "INVITE sip:14020@veertien.example.nl;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---a3f8e2c1d0b9;rport\r\n\
Max-Forwards: 69\r\n\
Record-Route: <sip:192.0.2.10;lr;ftag=as5f3b2c1d>\r\n\
Contact: <sip:+31612345678@192.0.2.10:5060;transport=udp>\r\n\
To: <sip:14020@veertien.example.nl;user=phone>\r\n\
From: \"+31612345678\" <sip:+31612345678@carrier.example.nl;user=phone>;tag=as5f3b2c1d\r\n\
Call-ID: 4b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e@192.0.2.10\r\n\
CSeq: 102 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO, UPDATE\r\n\
Supported: replaces, timer\r\n\
P-Asserted-Identity: <sip:+31612345678@carrier.example.nl;user=phone>\r\n\
User-Agent: CarrierSBC 9.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 229\r\n\
\r\n\
v=0\r\n\
o=- 1700000000 1700000000 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

const ACK: &str = "ACK sip:14020@veertien.example.nl;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---a3f8e2c1d0b9;rport\r\n\
Max-Forwards: 69\r\n\
To: <sip:14020@veertien.example.nl;user=phone>;tag=vt-1\r\n\
From: \"+31612345678\" <sip:+31612345678@carrier.example.nl;user=phone>;tag=as5f3b2c1d\r\n\
Call-ID: 4b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e@192.0.2.10\r\n\
CSeq: 102 ACK\r\n\
Content-Length: 0\r\n\r\n";
