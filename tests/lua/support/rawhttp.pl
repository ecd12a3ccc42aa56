#!/usr/bin/perl
# Raw HTTP over loopback for specs that must send what a well-behaved client (curl) never would:
# malformed requests, dot segments left in paths, huge chunked bodies. Perl because it is always
# there on Debian (perl-base is Essential) and IO::Socket::INET is part of it.
#
#   perl rawhttp.pl raw PORT            < request bytes      -> the response bytes on stdout
#   perl rawhttp.pl chunked PORT PATH BYTES                   -> the response's status line
#   perl rawhttp.pl storm PORT COUNT                          -> "sent N answered N silent N stuck N"
#                                                                and "status S N" lines
# storm: COUNT connections one after the other, each sending one malformed request (cycling
# through the kinds below), closing its side and reading the answer until the server closes.
# "silent" counts connections closed without an answer; "stuck" those the server left open
# for 5 s after we closed our side (after 3 of those the storm stops: the server is broken).
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Socket qw(SHUT_WR);

sub connect_to {
  my ($port) = @_;
  my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 10)
    or die "rawhttp: cannot connect to 127.0.0.1:$port: $!\n";
  binmode $s;
  return $s;
}

sub send_all {
  my ($s, $data) = @_;
  local $SIG{PIPE} = 'IGNORE';
  my $off = 0;
  while ($off < length $data) {
    my $n = syswrite($s, $data, 65536, $off);
    return 0 unless defined $n && $n > 0; # the server closed early (413, bad request)
    $off += $n;
  }
  return 1;
}

# Read until the server closes; returns (bytes, stuck)
sub read_all {
  my ($s, $timeout) = @_;
  my $sel = IO::Select->new($s);
  my $buf = '';
  while (1) {
    return ($buf, 1) unless $sel->can_read($timeout);
    my $n = sysread($s, my $chunk, 65536);
    return ($buf, 0) if !defined $n || $n == 0;
    $buf .= $chunk;
  }
}

sub exchange {
  my ($port, $data, $timeout) = @_;
  my $s = connect_to($port);
  send_all($s, $data);
  shutdown($s, SHUT_WR);
  my ($resp, $stuck) = read_all($s, $timeout // 10);
  close $s;
  return ($resp, $stuck);
}

my $mode = shift @ARGV // '';
if ($mode eq 'raw') {
  my $port = shift @ARGV;
  binmode STDIN;
  binmode STDOUT;
  local $/;
  my $req = <STDIN> // '';
  my ($resp, $stuck) = exchange($port, $req);
  print $resp;
  print STDERR "rawhttp: the server left the connection open\n" if $stuck;
} elsif ($mode eq 'chunked') {
  my ($port, $path, $bytes) = @ARGV;
  my $s = connect_to($port);
  send_all($s, "POST $path HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" .
                "Transfer-Encoding: chunked\r\n\r\n");
  my $chunk = 'x' x 65536;
  my $left = $bytes;
  while ($left > 0) {
    my $n = $left < 65536 ? $left : 65536;
    last unless send_all($s, sprintf("%x\r\n", $n) . substr($chunk, 0, $n) . "\r\n");
    $left -= $n;
  }
  send_all($s, "0\r\n\r\n");
  shutdown($s, SHUT_WR);
  my ($resp) = read_all($s, 30);
  close $s;
  my ($line) = $resp =~ /^([^\r\n]*)/;
  print(($line // ''), "\n");
} elsif ($mode eq 'storm') {
  my ($port, $count) = @ARGV;
  my $long = 'a' x 20000;
  my @kinds = (
    "GARBAGE\r\n\r\n",
    "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    "GET /$long HTTP/1.1\r\nHost: x\r\n\r\n",
    "POST /collection/abc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"short\":",
    "POST /collection/abc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nnot a chunk\r\n",
    "\x00\xff\xfe\x01binary\x00\r\n\r\n",
    "GET /%zz%00/../../etc/passwd?x=%%%&=&&y HTTP/1.1\r\nHost: x\r\n\r\n",
    "GET /emulator/health HTTP/1.1\r\nHost: x\r\nA header without a colon\r\n\r\n",
    "POST /ims/token/v3 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\n%%%&&==%zz=",
    "POST /data/foundation/catalog/dataSets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x.y.z\r\nx-api-key: k\r\nx-gw-ims-org-id: o\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"a\":[1,",
    "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "GET /partial",
    "GET / HTTP/1.1\r\nX-Big: " . ('b' x 100000) . "\r\n\r\n",
    "POST /ims/exchange/jwt HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=\r\nContent-Length: 12\r\n\r\n--\r\n--\r\n----",
    "PUT /data/foundation/import/batches/x/datasets/y/files/..%2F..%2Fz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    "GET /emulator/requests?since=-99999999999999999999&limit=1&path=%ff HTTP/1.1\r\nHost: x\r\n\r\n",
  );
  my ($sent, $answered, $silent, $stuck) = (0, 0, 0, 0);
  my %status;
  for my $i (0 .. $count - 1) {
    my ($resp, $st) = exchange($port, $kinds[$i % @kinds], 5);
    $sent++;
    $stuck++ if $st;
    last if $stuck >= 3;
    my @codes = $resp =~ m{(?:^|\n)HTTP/1\.[01] (\d{3})}g;
    if (@codes) { $answered++; $status{$_}++ for @codes; } else { $silent++; }
  }
  print "sent $sent answered $answered silent $silent stuck $stuck\n";
  print "status $_ $status{$_}\n" for sort keys %status;
} else {
  die "usage: rawhttp.pl raw PORT | chunked PORT PATH BYTES | storm PORT COUNT\n";
}
