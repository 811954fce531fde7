// The `ldm` client arrives with the XMPP client (issue 3); until then say so plainly.
process.stderr.write('ldm: the client is not available yet in this version\n');
process.exit(2);
