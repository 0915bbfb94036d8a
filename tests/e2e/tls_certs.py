"""Certificates made at test time for the TLS tests and benchmarks
(tests/e2e/test_tls.py, scripts/bench/suite.py): a CA and server pairs for
localhost / 127.0.0.1, by certtool (Debian's gnutls-bin)."""
import os
import subprocess


def certtool(*args):
    subprocess.run(["certtool"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


class Pair:
    """A server certificate and key (paths) and the CA that signed it."""

    def __init__(self, cert, key, ca, serial):
        self.cert, self.key, self.ca, self.serial = cert, key, ca, serial


class CertAuthority:
    """A CA made in `directory`, which issues server certificates for
    localhost / 127.0.0.1."""

    def __init__(self, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.key = os.path.join(self.dir, "ca.key")
        self.cert = os.path.join(self.dir, "ca.pem")
        certtool("--generate-privkey", "--key-type", "ecdsa", "--outfile", self.key)
        tmpl = self._template("ca", 'cn = "Parley test CA"\nca\ncert_signing_key\n'
                                    "expiration_days = 3\n")
        certtool("--generate-self-signed", "--load-privkey", self.key, "--template", tmpl,
                 "--outfile", self.cert)

    def _template(self, name, text):
        path = os.path.join(self.dir, name + ".tmpl")
        with open(path, "w") as f:
            f.write(text)
        return path

    def issue(self, serial, name=None, dates=None, key_type="ecdsa", days=3):
        """A server pair with this serial, valid for `days`; `dates`
        (activation, expiration as "YYYY-MM-DD") for an expired or not yet
        valid one."""
        name = name or "srv%d" % serial
        key = os.path.join(self.dir, name + ".key")
        cert = os.path.join(self.dir, name + ".pem")
        certtool("--generate-privkey", "--key-type", key_type, "--outfile", key)
        os.chmod(key, 0o600)
        when = ('activation_date = "%s 00:00:00"\nexpiration_date = "%s 00:00:00"\n' % dates
                if dates else "expiration_days = %d\n" % days)
        tmpl = self._template(name, 'cn = "localhost"\ndns_name = "localhost"\n'
                                    'ip_address = "127.0.0.1"\nserial = %d\ntls_www_server\n'
                                    "signing_key\nencryption_key\n%s" % (serial, when))
        certtool("--generate-certificate", "--load-privkey", key, "--load-ca-certificate",
                 self.cert, "--load-ca-privkey", self.key, "--template", tmpl, "--outfile", cert)
        return Pair(cert, key, self.cert, serial)
