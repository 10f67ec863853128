package clinical

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/config"
	"github.com/airlockhq/airlock/shared/results"
)

// DefaultResultTitle names a result published without --title.
const DefaultResultTitle = "Your result from the clinic"

// intakeBaseURL reads CLINICAL_INTAKE_URL: intake's public base URL, to
// which the one-time links point.
func intakeBaseURL(r *config.Reader, required bool) string {
	v := strings.TrimRight(r.String("CLINICAL_INTAKE_URL", ""), "/")
	if v == "" && !required {
		return ""
	}
	if v == "" {
		r.Fail("CLINICAL_INTAKE_URL", "set it to intake's public base URL, such as https://forms.example.org")
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		r.Fail("CLINICAL_INTAKE_URL", "must be an https:// base URL such as https://forms.example.org")
		return ""
	}
	return v
}

// runResults is `clinical results publish --receipt R --file F [--title T]
// [--expires DURATION] [--require-birth-date]`.
func runResults(ctx context.Context, env cli.Env) error {
	if len(env.Args) < 2 || env.Args[1] != "publish" {
		return cli.Usagef("clinical results: want `clinical results publish --receipt R --file F [--title T] [--expires DURATION] [--require-birth-date]`")
	}
	fs := flag.NewFlagSet("clinical results publish", flag.ContinueOnError)
	receipt := fs.String("receipt", "", "the submission's receipt")
	file := fs.String("file", "", "the document: PDF, PNG, JPEG or plain text")
	title := fs.String("title", DefaultResultTitle, "what the patient sees the document called")
	expires := fs.Duration("expires", results.DefaultExpiry, "how long the link works")
	requireBirthDate := fs.Bool("require-birth-date", false, "also ask for the submission's date of birth")
	if err := cli.ParseFlags(fs, env.Args[2:]); err != nil {
		return err
	}
	if _, ok := NormaliseReceipt(*receipt); !ok {
		return cli.Usagef("--receipt: must be a receipt such as ABCD-EFGH-JKLM-NPQR-STUV-WXYZ")
	}
	if *file == "" {
		return cli.Usagef("--file: name the document to publish")
	}
	data, err := readResultFile(*file)
	if err != nil {
		return err
	}
	r := config.NewReader(env.Getenv)
	base := intakeBaseURL(r, true)
	if err := r.Err(); err != nil {
		return err
	}
	cfg, pool, err := openCommand(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := NewResults(pool, time.Now)
	sub, err := store.SubmissionByReceipt(ctx, cfg.Forms, *receipt)
	if errors.Is(err, errNoSuchReceipt) {
		return cli.Usagef("--receipt: no submission has that receipt")
	}
	if err != nil {
		return err
	}
	p := Publication{SubmissionID: sub.ID, Title: *title, Data: data, Expires: *expires,
		RequireBirthDate: *requireBirthDate, BirthDate: sub.BirthDate}
	tok, res, err := store.Publish(ctx, p, cliActor(), newCommandAudit(pool, cfg.SecretKey, env.Logger()))
	var fe *FieldError
	if errors.As(err, &fe) {
		return cli.Usagef("--%s: %s", fe.Field, fe.Message)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, base+"/r/"+tok.String())
	env.Logger().Info("result published", "result_id", res.ID, "submission_id", sub.ID, "expires_at", res.ExpiresAt)
	return nil
}

// readResultFile reads at most one byte more than a result may have, so an
// oversized file is refused without reading it all.
func readResultFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, cli.Usagef("--file: cannot open the file")
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil, cli.Usagef("--file: not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, results.MaxSize+1))
	if err != nil {
		return nil, cli.Usagef("--file: cannot read the file")
	}
	if len(data) > results.MaxSize {
		return nil, cli.Usagef("--file: the file is larger than %d MiB", results.MaxSize>>20)
	}
	return data, nil
}
