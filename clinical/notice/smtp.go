package notice

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"strings"
	"time"

	"github.com/airlockhq/airlock/shared/config"
)

// Message is one notice: a subject and a plain-text body.
type Message struct {
	Subject string
	Body    string
}

// errNoStartTLS is returned when a non-loopback smtp:// server does not offer
// STARTTLS: the notice is not sent in the clear.
var errNoStartTLS = errors.New("the SMTP server does not offer STARTTLS; use smtps:// or a relay that does")

// Send delivers m to every recipient in one SMTP conversation bounded by
// c.Timeout. Errors name the step that failed, never the message.
func (c *Config) Send(ctx context.Context, m Message, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	host, _, _ := net.SplitHostPort(c.Server)
	tlsConf := &tls.Config{ServerName: host, RootCAs: c.RootCAs, MinVersion: tls.VersionTLS12}

	d := &net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", c.Server)
	if err != nil {
		return fmt.Errorf("connect to the SMTP server: %w", err)
	}
	// The deadline covers the whole conversation, so a server that stops
	// answering cannot hold the notice job (and its row locks) for long.
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return err
	}
	if c.ImplicitTLS {
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return fmt.Errorf("TLS with the SMTP server: %w", err)
		}
		conn = tc
	}
	client, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("SMTP greeting: %w", err)
	}
	defer client.Close()
	if err := client.Hello("localhost"); err != nil {
		return fmt.Errorf("SMTP EHLO: %w", err)
	}
	if !c.ImplicitTLS {
		if ok, _ := client.Extension("STARTTLS"); ok {
			if err := client.StartTLS(tlsConf); err != nil {
				return fmt.Errorf("SMTP STARTTLS: %w", err)
			}
		} else if !config.Loopback(c.Server) {
			return errNoStartTLS
		}
	}
	if c.Username != "" {
		// smtp.PlainAuth itself refuses to send the password over a
		// connection that is neither TLS nor to localhost.
		if err := client.Auth(smtp.PlainAuth("", c.Username, c.Password, host)); err != nil {
			return fmt.Errorf("SMTP authentication: %w", err)
		}
	}
	if err := client.Mail(c.From.Address); err != nil {
		return fmt.Errorf("SMTP MAIL FROM: %w", err)
	}
	for _, to := range c.To {
		if err := client.Rcpt(to.Address); err != nil {
			return fmt.Errorf("SMTP RCPT TO: %w", err)
		}
	}
	w, err := client.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if _, err := w.Write(c.render(m, now)); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	return client.Quit()
}

// render builds the RFC 5322 message: headers, then the body as
// quoted-printable UTF-8 so form titles in any language arrive intact.
func (c *Config) render(m Message, now time.Time) []byte {
	var b bytes.Buffer
	to := make([]string, len(c.To))
	for i, a := range c.To {
		to[i] = a.String()
	}
	id := make([]byte, 12)
	rand.Read(id)
	_, domain, _ := strings.Cut(c.From.Address, "@")
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", c.From.String())
	header("To", strings.Join(to, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", oneLine(m.Subject)))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(id)+"@"+domain+">")
	header("Auto-Submitted", "auto-generated")
	header("MIME-Version", "1.0")
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	qp.Write([]byte(strings.ReplaceAll(m.Body, "\n", "\r\n")))
	qp.Close()
	return b.Bytes()
}

// oneLine keeps a header value on one line whatever a form title holds.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
