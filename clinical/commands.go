package clinical

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/config"
)

func runServe(ctx context.Context, env cli.Env) error {
	if len(env.Args) > 1 {
		return cli.Usagef("clinical serve: unexpected argument %q", env.Args[1])
	}
	cfg, err := LoadServeConfig(env.Getenv)
	if err != nil {
		return err
	}
	return Serve(ctx, cfg, env.Logger())
}

// runStaff is `clinical staff add --email E --role admin|clinician|viewer`.
func runStaff(ctx context.Context, env cli.Env) error {
	if len(env.Args) < 2 || env.Args[1] != "add" {
		return cli.Usagef("clinical staff: want `clinical staff add --email E --role admin|clinician|viewer`")
	}
	fs := flag.NewFlagSet("clinical staff add", flag.ContinueOnError)
	email := fs.String("email", "", "the account's email address")
	role := fs.String("role", "", "admin, clinician or viewer (comma-separated for several)")
	if err := cli.ParseFlags(fs, env.Args[2:]); err != nil {
		return err
	}
	if _, err := NormaliseEmail(*email); err != nil {
		return cli.Usagef("--email: must be an email address")
	}
	roles, err := CheckRoles(config.SplitList(*role))
	if err != nil {
		return cli.Usagef("--role: must be admin, clinician or viewer")
	}
	cfg, pool, err := openCommand(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	accounts := NewAccounts(pool, newCommandAudit(pool, cfg.SecretKey, env.Logger()), cfg.SecretKey, NewPasswords(DefaultArgon2), time.Now)
	en, err := accounts.Create(ctx, cliActor(), nil, *email, roles, true)
	if codeOf(err) == CodeConflict {
		return cli.Usagef("--email: an account with that email exists already")
	}
	if err != nil {
		return err
	}
	// Nothing printed here logs in: the codes only let the account's owner
	// choose a password and set up an authenticator at /enrol.
	if en.Staff.Status == StatusActive {
		fmt.Fprintf(env.Stdout, `account:        %s (staff:%d), roles %s
status:         active (the first admin)
create code:    %s
approve code:   %s
codes expire:   %s

Enrol yourself: open the staff app at /enrol, enter this email and both codes, scan the
QR code with an authenticator app, choose a password and confirm a code. The codes work
once and are shown only now.
`, en.Staff.Email, en.Staff.ID, strings.Join(en.Staff.Roles, ","), en.CreateCode, en.ApproveCode, en.Expires.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(env.Stdout, `account:        %s (staff:%d), roles %s
status:         pending: an admin must approve it in the app, and is then shown the approve code
create code:    %s
codes expire:   %s (this code; the approve code expires 72h after approval)

Give the create code to the account's owner. With the approve code they enrol at /enrol:
their own password and their authenticator. The code is shown only now.
`, en.Staff.Email, en.Staff.ID, strings.Join(en.Staff.Roles, ","), en.CreateCode, en.Expires.UTC().Format(time.RFC3339))
	}
	env.Logger().Info("staff account created", "staff_id", en.Staff.ID, "status", en.Staff.Status)
	return nil
}

// runRetention is `clinical retention run`: one pass of the retention policy.
func runRetention(ctx context.Context, env cli.Env) error {
	if len(env.Args) != 2 || env.Args[1] != "run" {
		return cli.Usagef("clinical retention: want `clinical retention run`")
	}
	r := config.NewReader(env.Getenv)
	retention := readRetention(r)
	if err := r.Err(); err != nil {
		return err
	}
	if retention == 0 {
		return cli.Usagef("CLINICAL_RETENTION: set it (such as 8760h) to run the retention policy")
	}
	cfg, pool, err := openCommand(ctx, env)
	if err != nil {
		return err
	}
	defer pool.Close()
	audit := newCommandAudit(pool, cfg.SecretKey, env.Logger())
	n, err := RunRetention(ctx, NewSubmissions(pool, cfg.SecretKey, time.Now), audit, cliActor(), retention, time.Now(), env.Logger())
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "{\"deleted\":%d}\n", n)
	return nil
}
