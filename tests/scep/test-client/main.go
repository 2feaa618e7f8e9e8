// SPDX-License-Identifier: Apache-2.0

// scep-test-client: a small SCEP client for the test bed's self-test.
//
// Debian's scepclient never sends CertPoll (it re-sends the PKCSReq every
// 30 s), so this client exists to drive the pending peer's CertPoll path in
// seconds: PKCSReq, then while PENDING a CertPoll (or, with -poll pkcsreq, the
// same PKCSReq again) every -interval, at most -max-polls times.  It checks
// every CertRep like a device should (signature by the CA from -ca, messageType
// 3, same transactionID, recipientNonce = our senderNonce, a known pkiStatus,
// failInfo with FAILURE), reports the envelope cipher, and on SUCCESS writes
// the certificate whose key is ours and that the CA signed.
//
// stdout: one line per exchange, e.g. "PKCSReq tid=… -> PENDING", then
// "result=SUCCESS envelope=aes-128-cbc" or "result=FAILURE failInfo=badRequest".
// Exit status: 0 SUCCESS, 2 FAILURE, 3 still PENDING after -max-polls, 1 error.
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/micromdm/scep/v2/cryptoutil/x509util"
	"go.mozilla.org/pkcs7"
)

var (
	oidMessageType    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 2}
	oidPKIStatus      = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 3}
	oidFailInfo       = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 4}
	oidSenderNonce    = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 5}
	oidRecipientNonce = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 6}
	oidTransactionID  = asn1.ObjectIdentifier{2, 16, 840, 1, 113733, 1, 9, 7}
)

var failNames = map[string]string{"0": "badAlg", "1": "badMessageCheck", "2": "badRequest", "3": "badTime", "4": "badCertId"}
var statusNames = map[string]string{"0": "SUCCESS", "2": "FAILURE", "3": "PENDING"}
var cipherNames = map[string]string{"1.3.14.3.2.7": "des-cbc", "1.2.840.113549.3.7": "des-ede3-cbc",
	"2.16.840.1.101.3.4.1.2": "aes-128-cbc", "2.16.840.1.101.3.4.1.42": "aes-256-cbc"}

type client struct {
	url     string
	useGET  bool
	ca      *x509.Certificate
	key     *rsa.PrivateKey
	self    *x509.Certificate // self-signed signer certificate for our key
	tid     string
	saveRep string
}

func fatal(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "scep-test-client: "+format+"\n", a...)
	os.Exit(1)
}

func (c *client) get(op, msg string) ([]byte, error) {
	resp, err := http.Get(c.url + "?operation=" + op + "&message=" + url.QueryEscape(msg))
	return body(resp, err)
}

func body(resp *http.Response, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return b, err
}

// send wraps messageData for the CA, signs it with our self-signed certificate,
// sends it and returns the verified CertRep's status, failInfo and envelope.
func (c *client) send(mtype string, messageData []byte) (status, fail string, env []byte, err error) {
	e7, err := pkcs7.Encrypt(messageData, []*x509.Certificate{c.ca})
	if err != nil {
		return
	}
	sd, err := pkcs7.NewSignedData(e7)
	if err != nil {
		return
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	nonce := make([]byte, 16)
	rand.Read(nonce)
	if err = sd.AddSigner(c.self, c.key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
		{Type: oidTransactionID, Value: c.tid}, {Type: oidMessageType, Value: mtype},
		{Type: oidSenderNonce, Value: nonce}}}); err != nil {
		return
	}
	req, err := sd.Finish()
	if err != nil {
		return
	}
	var rep []byte
	if c.useGET {
		rep, err = c.get("PKIOperation", base64.StdEncoding.EncodeToString(req))
	} else {
		rep, err = body(http.Post(c.url+"?operation=PKIOperation", "application/x-pki-message", bytes.NewReader(req)))
	}
	if err != nil {
		return
	}
	if c.saveRep != "" {
		os.WriteFile(c.saveRep, rep, 0644)
	}
	p7, err := pkcs7.Parse(rep)
	if err != nil {
		return
	}
	p7.Certificates = []*x509.Certificate{c.ca} // trust the pinned CA only
	if err = p7.Verify(); err != nil {
		return "", "", nil, fmt.Errorf("CertRep signature: %v", err)
	}
	var rtype, rtid string
	var rnonce []byte
	if err = p7.UnmarshalSignedAttribute(oidMessageType, &rtype); err == nil {
		err = p7.UnmarshalSignedAttribute(oidTransactionID, &rtid)
	}
	if err == nil {
		err = p7.UnmarshalSignedAttribute(oidRecipientNonce, &rnonce)
	}
	if err == nil {
		err = p7.UnmarshalSignedAttribute(oidPKIStatus, &status)
	}
	switch {
	case err != nil:
	case rtype != "3":
		err = fmt.Errorf("CertRep messageType %q", rtype)
	case rtid != c.tid:
		err = fmt.Errorf("CertRep transactionID %q, sent %q", rtid, c.tid)
	case !bytes.Equal(rnonce, nonce):
		err = errors.New("CertRep recipientNonce is not our senderNonce")
	case statusNames[status] == "":
		err = fmt.Errorf("unknown pkiStatus %q", status)
	case status == "2":
		if err = p7.UnmarshalSignedAttribute(oidFailInfo, &fail); err == nil && failNames[fail] == "" {
			err = fmt.Errorf("unknown failInfo %q", fail)
		}
	}
	return status, fail, p7.Content, err
}

// issued decrypts a SUCCESS envelope and returns our certificate and the cipher.
func (c *client) issued(env []byte) (*x509.Certificate, string, error) {
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	var ed struct {
		Version    int
		Recipients asn1.RawValue
		ECI        struct {
			Type asn1.ObjectIdentifier
			Alg  pkix.AlgorithmIdentifier
			Rest asn1.RawValue `asn1:"optional"`
		}
	}
	cipher := "?"
	if _, err := asn1.Unmarshal(env, &ci); err == nil {
		if _, err := asn1.Unmarshal(ci.Content.Bytes, &ed); err == nil {
			if cipher = cipherNames[ed.ECI.Alg.Algorithm.String()]; cipher == "" {
				cipher = ed.ECI.Alg.Algorithm.String()
			}
		}
	}
	e7, err := pkcs7.Parse(env)
	if err != nil {
		return nil, cipher, fmt.Errorf("envelope: %v", err)
	}
	deg, err := e7.Decrypt(c.self, c.key)
	if err != nil {
		return nil, cipher, fmt.Errorf("decrypt envelope (%s): %v", cipher, err)
	}
	certs, err := pkcs7.Parse(deg)
	if err != nil {
		return nil, cipher, fmt.Errorf("degenerate PKCS#7: %v", err)
	}
	mine, _ := x509.MarshalPKIXPublicKey(&c.key.PublicKey)
	for _, crt := range certs.Certificates {
		if bytes.Equal(crt.RawSubjectPublicKeyInfo, mine) {
			return crt, cipher, crt.CheckSignatureFrom(c.ca)
		}
	}
	return nil, cipher, errors.New("no certificate for our key in the CertRep")
}

func readPEM(file, typ string) []byte {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	for blk, rest := pem.Decode(b); blk != nil; blk, rest = pem.Decode(rest) {
		if strings.Contains(blk.Type, typ) {
			return blk.Bytes
		}
	}
	fatal("%s: no %s PEM block", file, typ)
	return nil
}

func main() {
	c := &client{}
	flag.StringVar(&c.url, "url", "", "SCEP URL, e.g. http://127.0.0.1:8081/scep")
	caFile := flag.String("ca", "", "CA certificate (PEM) to encrypt to and to verify CertReps with; fetched with GetCACert and written there if the file does not exist")
	challenge := flag.String("challenge", "", "challengePassword for the CSR")
	cn := flag.String("cn", "scep-test-client", "subject CN")
	keyFile := flag.String("key", "", "RSA key (PEM); a 2048-bit key is created there if missing (required)")
	out := flag.String("out", "", "write the issued certificate here (PEM)")
	poll := flag.String("poll", "certpoll", "while PENDING send: certpoll | pkcsreq (re-send the request, like micromdm scepclient)")
	interval := flag.Duration("interval", time.Second, "wait between polls")
	maxPolls := flag.Int("max-polls", 10, "give up (exit 3) after this many polls")
	pollOnly := flag.Bool("poll-only", false, "send only CertPoll (resume, or an unknown transaction)")
	flag.StringVar(&c.tid, "tid", "", "transactionID (default: upper hex SHA-256 of our SubjectPublicKeyInfo)")
	flag.BoolVar(&c.useGET, "get", false, "send PKIOperation by GET instead of POST")
	flag.StringVar(&c.saveRep, "save-certrep", "", "save the last CertRep (DER) here")
	saveSigner := flag.String("save-signer", "", "save the self-signed signer certificate (PEM) here")
	flag.Parse()
	if c.url == "" || *keyFile == "" || *caFile == "" {
		fatal("-url, -ca and -key are required")
	}
	pkcs7.ContentEncryptionAlgorithm = pkcs7.EncryptionAlgorithmAES128CBC

	var err error
	if der := readPEM(*caFile, "CERTIFICATE"); der != nil {
		c.ca, err = x509.ParseCertificate(der)
	} else if der, err = c.get("GetCACert", "scep-test-client"); err == nil {
		if c.ca, err = x509.ParseCertificate(der); err == nil {
			err = os.WriteFile(*caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0644)
		}
	}
	if err != nil {
		fatal("CA certificate: %v", err)
	}
	if der := readPEM(*keyFile, "PRIVATE KEY"); der != nil {
		k, err := x509.ParsePKCS1PrivateKey(der)
		if err != nil {
			pk, err2 := x509.ParsePKCS8PrivateKey(der)
			if k, _ = pk.(*rsa.PrivateKey); err2 != nil || k == nil {
				fatal("%s: not an RSA key: %v", *keyFile, err)
			}
		}
		c.key = k
	} else {
		if c.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			fatal("%v", err)
		}
		os.WriteFile(*keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(c.key)}), 0600)
	}
	subject := pkix.Name{CommonName: *cn, Organization: []string{"scep-test-client"}}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subject, Issuer: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &c.key.PublicKey, c.key)
	if err == nil {
		c.self, err = x509.ParseCertificate(der)
	}
	if err != nil {
		fatal("self-signed certificate: %v", err)
	}
	if *saveSigner != "" {
		os.WriteFile(*saveSigner, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0644)
	}
	if c.tid == "" {
		h := sha256.Sum256(c.self.RawSubjectPublicKeyInfo)
		c.tid = strings.ToUpper(hex.EncodeToString(h[:]))
	}
	csr, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{Subject: subject, SignatureAlgorithm: x509.SHA256WithRSA},
		ChallengePassword:  *challenge}, c.key)
	if err != nil {
		fatal("CSR: %v", err)
	}
	ias, err := asn1.Marshal(struct{ Issuer, Subject asn1.RawValue }{
		asn1.RawValue{FullBytes: c.ca.RawSubject}, asn1.RawValue{FullBytes: c.self.RawSubject}})
	if err != nil {
		fatal("IssuerAndSubject: %v", err)
	}

	for n := 0; ; n++ {
		mtype, name, data := "19", "PKCSReq", csr
		if *pollOnly || (n > 0 && *poll == "certpoll") {
			mtype, name, data = "20", "CertPoll", ias
		}
		status, fail, env, err := c.send(mtype, data)
		if err != nil {
			fatal("%s: %v", name, err)
		}
		fmt.Printf("%s tid=%s -> %s\n", name, c.tid, strings.TrimSpace(statusNames[status]+" "+failNames[fail]))
		switch status {
		case "0":
			crt, cipher, err := c.issued(env)
			if err != nil {
				fatal("SUCCESS but %v", err)
			}
			if *out != "" {
				os.WriteFile(*out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: crt.Raw}), 0644)
			}
			fmt.Printf("result=SUCCESS envelope=%s serial=%s polls=%d\n", cipher, crt.SerialNumber, n)
			os.Exit(0)
		case "2":
			fmt.Printf("result=FAILURE failInfo=%s polls=%d\n", failNames[fail], n)
			os.Exit(2)
		}
		if n >= *maxPolls || *pollOnly {
			fmt.Printf("result=PENDING polls=%d\n", n)
			os.Exit(3)
		}
		time.Sleep(*interval)
	}
}
