#!/usr/bin/perl
# Slow clients for the emulator's connection guard: COUNT connections to 127.0.0.1:PORT, each
# sending a request line and then one header line every INTERVAL seconds, never finishing its
# headers, for HOLD seconds (or until killed).
#
#   perl slowloris.pl PORT COUNT INTERVAL HOLD   -> "open N refused M" once every connection was tried
use strict;
use warnings;
use IO::Socket::INET;

my ($port, $count, $interval, $hold) = @ARGV;
$| = 1;
$SIG{PIPE} = 'IGNORE';
my (@socks, $refused);
$refused = 0;
for my $i (1 .. $count) {
  my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 2);
  if (!$s) { $refused++; next; }
  syswrite($s, "GET /emulator/health HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n");
  push @socks, $s;
}
print "open " . scalar(@socks) . " refused $refused\n";
my $end = time + $hold;
while (time < $end) {
  sleep($interval < $end - time ? $interval : $end - time);
  syswrite($_, "X-Slow: 1\r\n") for @socks;
}
