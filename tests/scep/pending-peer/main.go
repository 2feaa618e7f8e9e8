// SPDX-License-Identifier: Apache-2.0

// pending-peer: a SCEP (RFC 8894) test server that can answer PENDING.
//
// Debian's scepserver (micromdm 2.1.0) only ever answers SUCCESS or FAILURE,
// and its CertRep envelope is single DES.  This peer reuses Debian's micromdm
// library (golang-github-micromdm-scep-dev) for the CA depot, the certificate
// signer, the HTTP transport and GetCACert, and adds what the test bed needs:
//
//   - a state machine per transactionID: the first -pending N requests of a
//     transaction (PKCSReq, RenewalReq, a repeated PKCSReq or CertPoll) are
//     answered PENDING, the next one SUCCESS (the certificate is issued once
//     and cached) or, with -fail-after, FAILURE/badRequest;
//   - CertPoll (GetCertInitial): same transactionID, signed with the same key
//     as the request; unknown transaction -> FAILURE/badCertId;
//   - a wrong challenge is rejected at once (FAILURE/badRequest, no PENDING);
//   - with -unavailable N the first N PKIOperation requests of each
//     transactionID get HTTP 500 before anything else is looked at, as from
//     a CA that is down for a while and then comes back;
//   - CertRep envelopes are AES-128-CBC and signed with SHA-256, so an
//     OpenSSL 3 client without the legacy provider can read them;
//   - with -issued-not-before / -issued-not-after the certificate is made
//     here instead of by the depot's signer, valid from and until those
//     offsets to the time of issue (e.g. -48h and -24h: already expired;
//     2h and 48h: not valid yet), for clients that must refuse it;
//   - it listens on 127.0.0.1 only.
//
// Readiness: once the socket listens it writes the port to -port-file (if
// given) and prints "pending-peer: ready url=http://127.0.0.1:PORT/scep" on
// stderr.  Every operation is logged on stderr, one line each.
// Build: tests/scep/build.sh (GOPATH mode, offline, Debian's /usr/share/gocode).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	kitlog "github.com/go-kit/kit/log"
	"github.com/micromdm/scep/v2/depot"
	filedepot "github.com/micromdm/scep/v2/depot/file"
	"github.com/micromdm/scep/v2/scep"
	scepserver "github.com/micromdm/scep/v2/server"
	"go.mozilla.org/pkcs7"
)

// SCEP signed attributes (RFC 8894 §3.2.1), under 2.16.840.1.113733.1.9
var (
	oidMessageType    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 2}
	oidPKIStatus      = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 3}
	oidFailInfo       = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 4}
	oidSenderNonce    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 5}
	oidRecipientNonce = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 6}
	oidTransactionID  = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 7}
)

var failNames = map[scep.FailInfo]string{scep.BadAlg: "badAlg", scep.BadMessageCheck: "badMessageCheck",
	scep.BadRequest: "badRequest", scep.BadTime: "badTime", scep.BadCertID: "badCertId"}

// txn is the server-side state of one transactionID.
type txn struct {
	signerKey []byte // DER SubjectPublicKeyInfo of the key that signed the request
	csr       *scep.CSRReqMessage
	pending   int // PENDING answers given so far
	cert      *x509.Certificate
	failed    bool
}

type peer struct {
	scepserver.Service // the library's service: GetCACert (and GetNextCACert)
	ca                 *x509.Certificate
	key                *rsa.PrivateKey
	signer             scepserver.CSRSigner
	caps               []byte
	challenge          string
	pendingN           int
	failAfter          bool
	unavailable        int           // HTTP 500 to this many requests per transaction
	ownValidity        bool          // issue here, with the offsets below
	notBefore          time.Duration // from the time of issue
	notAfter           time.Duration

	mu   sync.Mutex
	txns map[string]*txn
	down map[string]int // HTTP 500 answers given so far, per transactionID
}

func (p *peer) GetCACaps(ctx context.Context) ([]byte, error) {
	log.Printf("op=GetCACaps answer=%q", strings.ReplaceAll(string(p.caps), "\n", ","))
	return p.caps, nil
}

func (p *peer) GetCACert(ctx context.Context, m string) ([]byte, int, error) {
	data, n, err := p.Service.GetCACert(ctx, m)
	log.Printf("op=GetCACert message=%q answer=%d-cert(s) err=%v", m, n, err)
	return data, n, err
}

// reply is what one PKIOperation is answered with.
type reply struct {
	status scep.PKIStatus
	fail   scep.FailInfo
	cert   *x509.Certificate
	note   string
}

func (p *peer) PKIOperation(ctx context.Context, data []byte) ([]byte, error) {
	p7, err := pkcs7.Parse(data)
	if err == nil {
		err = p7.Verify() // signature with the signer certificate the message carries
	}
	var tid, mtype string
	var nonce []byte
	if err == nil {
		err = p7.UnmarshalSignedAttribute(oidTransactionID, &tid)
	}
	if err == nil {
		err = p7.UnmarshalSignedAttribute(oidMessageType, &mtype)
	}
	if err == nil {
		err = p7.UnmarshalSignedAttribute(oidSenderNonce, &nonce)
	}
	signer := (*x509.Certificate)(nil)
	if err == nil {
		if signer = p7.GetOnlySigner(); signer == nil {
			err = errors.New("need exactly one signer with its certificate")
		}
	}
	if err != nil {
		log.Printf("op=PKIOperation answer=HTTP-500 err=%q", err)
		return nil, err
	}
	if n, down := p.stillDown(tid); down {
		log.Printf("op=PKIOperation type=%s tid=%s answer=HTTP-500 unavailable=%d/%d", typeName(mtype), tid,
			n, p.unavailable)
		return nil, errors.New("unavailable")
	}
	r := p.handle(data, p7, tid, mtype, signer)
	log.Printf("op=PKIOperation type=%s tid=%s answer=%s%s", typeName(mtype), tid, statusName(r), r.note)
	if r.status == "" {
		return nil, errors.New(strings.TrimSpace(r.note))
	}
	return p.certRep(tid, nonce, signer, r)
}

// stillDown counts a request of transaction tid against -unavailable: true
// (and how many so far) while it is to get HTTP 500.
func (p *peer) stillDown(tid string) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[tid] >= p.unavailable {
		return 0, false
	}
	p.down[tid]++
	return p.down[tid], true
}

func (p *peer) handle(data []byte, p7 *pkcs7.PKCS7, tid, mtype string, signer *x509.Certificate) reply {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.txns[tid]
	switch mtype {
	case scep.PKCSReq, scep.RenewalReq:
		msg, err := scep.ParsePKIMessage(data)
		if err == nil {
			err = msg.DecryptPKIEnvelope(p.ca, p.key)
		}
		if err != nil {
			return reply{note: fmt.Sprintf(" err=%q", err)}
		}
		if p.challenge != "" && subtle.ConstantTimeCompare([]byte(p.challenge), []byte(msg.ChallengePassword)) != 1 {
			return reply{status: scep.FAILURE, fail: scep.BadRequest, note: ` reason="invalid challenge"`}
		}
		if t == nil || !bytes.Equal(t.signerKey, signer.RawSubjectPublicKeyInfo) {
			t = &txn{signerKey: signer.RawSubjectPublicKeyInfo}
			p.txns[tid] = t
		}
		t.csr = msg.CSRReqMessage // a repeated request counts like a poll
	case scep.CertPoll:
		if t == nil {
			return reply{status: scep.FAILURE, fail: scep.BadCertID, note: ` reason="unknown transaction"`}
		}
		if !bytes.Equal(t.signerKey, signer.RawSubjectPublicKeyInfo) {
			return reply{status: scep.FAILURE, fail: scep.BadMessageCheck, note: ` reason="signed with another key than the request"`}
		}
		var ias struct{ Issuer, Subject asn1.RawValue }
		if env, err := pkcs7.Parse(p7.Content); err != nil {
			return reply{note: fmt.Sprintf(" err=%q", err)}
		} else if raw, err := env.Decrypt(p.ca, p.key); err != nil {
			return reply{note: fmt.Sprintf(" err=%q", err)}
		} else if _, err := asn1.Unmarshal(raw, &ias); err != nil {
			return reply{note: fmt.Sprintf(" err=\"IssuerAndSubject: %v\"", err)}
		}
	default:
		return reply{note: fmt.Sprintf(" err=\"messageType %s not supported\"", mtype)}
	}
	switch {
	case t.cert != nil:
		return reply{status: scep.SUCCESS, cert: t.cert, note: " (already issued)"}
	case t.failed:
		return reply{status: scep.FAILURE, fail: scep.BadRequest, note: ` reason="rejected earlier"`}
	case t.pending < p.pendingN:
		t.pending++
		return reply{status: scep.PENDING, note: fmt.Sprintf(" pending=%d/%d", t.pending, p.pendingN)}
	case p.failAfter:
		t.failed = true
		return reply{status: scep.FAILURE, fail: scep.BadRequest, note: ` reason="-fail-after"`}
	}
	cert, err := p.issue(t.csr)
	if err != nil {
		return reply{status: scep.FAILURE, fail: scep.BadRequest, note: fmt.Sprintf(" reason=%q", err)}
	}
	t.cert = cert
	return reply{status: scep.SUCCESS, cert: cert, note: fmt.Sprintf(" serial=%s subject=%q", cert.SerialNumber, cert.Subject)}
}

// issue signs the request's certificate: by the depot's signer, or here
// with the -issued-not-before / -issued-not-after validity.
func (p *peer) issue(m *scep.CSRReqMessage) (*x509.Certificate, error) {
	if !p.ownValidity {
		return p.signer.SignCSR(m)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      m.CSR.Subject,
		NotBefore:    now.Add(p.notBefore),
		NotAfter:     now.Add(p.notAfter),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:     m.CSR.DNSNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, m.CSR.PublicKey, p.key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// certRep builds the CertRep pkiMessage: SignedData (SHA-256, signed by the
// CA) whose content is, for SUCCESS, an AES-128-CBC envelope of a degenerate
// certs-only PKCS#7 for the request's signer certificate, and empty otherwise.
func (p *peer) certRep(tid string, reqNonce []byte, recipient *x509.Certificate, r reply) ([]byte, error) {
	var content []byte
	if r.status == scep.SUCCESS {
		deg, err := scep.DegenerateCertificates([]*x509.Certificate{r.cert})
		if err != nil {
			return nil, err
		}
		if content, err = pkcs7.Encrypt(deg, []*x509.Certificate{recipient}); err != nil {
			return nil, err
		}
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	attrs := []pkcs7.Attribute{
		{Type: oidTransactionID, Value: tid},
		{Type: oidMessageType, Value: scep.CertRep},
		{Type: oidPKIStatus, Value: r.status},
		{Type: oidSenderNonce, Value: nonce},
		{Type: oidRecipientNonce, Value: reqNonce},
	}
	if r.status == scep.FAILURE {
		attrs = append(attrs, pkcs7.Attribute{Type: oidFailInfo, Value: r.fail})
	}
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(p.ca, p.key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: attrs}); err != nil {
		return nil, err
	}
	return sd.Finish()
}

func typeName(t string) string {
	switch t {
	case scep.PKCSReq:
		return "PKCSReq"
	case scep.RenewalReq:
		return "RenewalReq"
	case scep.CertPoll:
		return "CertPoll"
	}
	return "messageType-" + t
}

func statusName(r reply) string {
	switch r.status {
	case scep.SUCCESS:
		return "SUCCESS"
	case scep.PENDING:
		return "PENDING"
	case scep.FAILURE:
		return "FAILURE failInfo=" + failNames[r.fail]
	}
	return "HTTP-500"
}

// createCA writes a new RFC 8894-style CA (key usage also digitalSignature and
// keyEncipherment) into an empty depot, in the format the library's file
// depot reads: ca.pem, and ca.key as a PEM-encrypted PKCS#1 key.
func createCA(dir, pass, cn string, bits int) error {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return err
	}
	der, err := depot.NewCACert(depot.WithCommonName(cn), depot.WithCountry("US"),
		depot.WithOrganization("scep-test-bed"), depot.WithOrganizationalUnit("pending peer"),
		depot.WithKeyUsage(x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment|
			x509.KeyUsageCertSign|x509.KeyUsageCRLSign)).SelfSign(rand.Reader, &key.PublicKey, key)
	if err != nil {
		return err
	}
	//lint:ignore SA1019 the library's depot only reads legacy-encrypted PEM keys
	blk, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key),
		[]byte(pass), x509.PEMCipher3DES)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), pem.EncodeToMemory(blk), 0400); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0444)
}

// statusLogger logs requests that the SCEP layer did not answer with 200
// (wrong path or method, unknown operation, undecodable message).
type statusLogger struct {
	http.ResponseWriter
	code int
}

func (s *statusLogger) WriteHeader(c int) { s.code = c; s.ResponseWriter.WriteHeader(c) }

func main() {
	port := flag.String("port", "8081", "TCP port on 127.0.0.1 (0 = any free port, see -port-file)")
	portFile := flag.String("port-file", "", "write the port here once listening")
	dir := flag.String("depot", "depot", "CA depot directory; a CA is created there if it has no ca.pem")
	capass := flag.String("capass", "", "password of depot/ca.key")
	cn := flag.String("ca-cn", "SCEP pending peer test CA", "common name of a newly created CA")
	keySize := flag.Int("keySize", 2048, "RSA key size of a newly created CA")
	challenge := flag.String("challenge", "", "required challengePassword (empty: none)")
	pending := flag.Int("pending", 0, "answer PENDING this many times per transaction before deciding")
	failAfter := flag.Bool("fail-after", false, "after the PENDING answers, answer FAILURE/badRequest instead of issuing")
	unavailable := flag.Int("unavailable", 0, "answer the first N PKIOperation requests of each transaction with HTTP 500")
	caps := flag.String("caps", "AES,SHA-256,POSTPKIOperation", "GetCACaps keywords, comma-separated")
	allowRenew := flag.Int("allowrenew", 0, "depot signer: refuse a DN that has a cert valid for more than this many days (0 = always issue)")
	validity := flag.Int("crtvalid", 365, "validity of issued certificates in days")
	alias := flag.String("alias", "", "comma-separated extra URL paths that serve SCEP too, e.g. /scep/pkiclient.exe")
	notBefore := flag.Duration("issued-not-before", 0, "issue certificates here, valid from this offset to the time of issue (e.g. -48h, 2h)")
	notAfter := flag.Duration("issued-not-after", 365*24*time.Hour, "with -issued-not-before: valid until this offset to the time of issue (e.g. -24h)")
	flag.Parse()
	ownValidity := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "issued-not-before" || f.Name == "issued-not-after" {
			ownValidity = true
		}
	})
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("pending-peer: ")

	if err := os.MkdirAll(*dir, 0755); err != nil {
		log.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(*dir, "ca.pem")); os.IsNotExist(err) {
		if err := createCA(*dir, *capass, *cn, *keySize); err != nil {
			log.Fatalf("create CA: %v", err)
		}
		log.Printf("created CA in %s", *dir)
	}
	d, err := filedepot.NewFileDepot(*dir)
	if err != nil {
		log.Fatal(err)
	}
	certs, key, err := d.CA([]byte(*capass))
	if err != nil {
		log.Fatalf("load CA from %s: %v", *dir, err)
	}
	signer := depot.NewSigner(d, depot.WithCAPass(*capass), depot.WithAllowRenewalDays(*allowRenew),
		depot.WithValidityDays(*validity))
	svc, err := scepserver.NewService(certs[0], key, signer)
	if err != nil {
		log.Fatal(err)
	}
	pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES128CBC // never DES
	p := &peer{Service: svc, ca: certs[0], key: key, signer: signer, challenge: *challenge,
		pendingN: *pending, failAfter: *failAfter, txns: map[string]*txn{},
		unavailable: *unavailable, down: map[string]int{},
		ownValidity: ownValidity, notBefore: *notBefore, notAfter: *notAfter,
		caps: []byte(strings.Join(strings.Split(*caps, ","), "\n"))}

	kl := kitlog.With(kitlog.NewLogfmtLogger(os.Stderr), "component", "pending-peer-http")
	h := scepserver.MakeHTTPHandler(scepserver.MakeServerEndpoints(p), p, kl)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", *port))
	if err != nil {
		log.Fatal(err)
	}
	actual := ln.Addr().(*net.TCPAddr).Port
	if *portFile != "" {
		tmp := *portFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d\n", actual)), 0644); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, *portFile); err != nil {
			log.Fatal(err)
		}
	}
	issued := "depot"
	if ownValidity {
		issued = fmt.Sprintf("%v..%v", *notBefore, *notAfter)
	}
	log.Printf("ready url=http://127.0.0.1:%d/scep pending=%d fail-after=%v unavailable=%d challenge=%v issued-validity=%s ca=%s",
		actual, *pending, *failAfter, *unavailable, *challenge != "", issued, filepath.Join(*dir, "ca.pem"))
	aliases := map[string]bool{}
	for _, a := range strings.Split(*alias, ",") {
		if a != "" {
			aliases[a] = true
		}
	}
	log.Fatal(http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if aliases[r.URL.Path] {
			r.URL.Path = "/scep" // the library's router serves /scep only
		}
		sl := &statusLogger{ResponseWriter: w, code: 200}
		h.ServeHTTP(sl, r)
		if sl.code != 200 {
			log.Printf("op=%s http=%s %s answer=HTTP-%d", r.URL.Query().Get("operation"), r.Method, r.URL.Path, sl.code)
		}
	})))
}
