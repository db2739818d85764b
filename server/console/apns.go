// The APNs push certificate page (it-admin): its topic and expiry, the
// 30-day warning, and the upload.

package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/applemdm"
)

// PushCerts is the agency's APNs push certificate (applemdm.MDM).
type PushCerts interface {
	PushCertStatus(ctx context.Context) (applemdm.PushCertStatus, error)
	StorePushCert(ctx context.Context, certPEM, keyPEM []byte, actor, source string) (applemdm.PushCertStatus, error)
}

// WithPushCerts serves the APNs page. Without it (no Apple MDM) the
// console has none.
func WithPushCerts(p PushCerts) Option { return func(c *Console) { c.pushCerts = p } }

type apnsView struct {
	Stored bool
	Status applemdm.PushCertStatus
}

func (c *Console) apnsPage(w http.ResponseWriter, r *http.Request, v *visit) {
	st, err := c.pushCerts.PushCertStatus(r.Context())
	if err != nil && !errors.Is(err, applemdm.ErrNoPushCert) {
		c.fail(w, r, err)
		return
	}
	data := view{Title: "APNs push certificate", D: apnsView{Stored: err == nil, Status: st}}
	if r.URL.Query().Get("done") == "push-cert" {
		data.Flash = "Push certificate stored; pushes use it from now on."
	}
	c.render(w, r, http.StatusOK, "apns", v, data)
}

func (c *Console) uploadPushCert(w http.ResponseWriter, r *http.Request, v *visit) {
	// checkRequest bounded the body; visit's CSRF check parsed it.
	if r.MultipartForm == nil {
		c.refused(w, r, v, input.Errorf("form", "send the certificate and the key as files (multipart/form-data)"))
		return
	}
	certPEM, err := formFile(r.MultipartForm, "cert")
	if err != nil {
		c.refused(w, r, v, err)
		return
	}
	keyPEM, err := formFile(r.MultipartForm, "key")
	if err != nil {
		c.refused(w, r, v, err)
		return
	}
	if _, err := c.pushCerts.StorePushCert(r.Context(), certPEM, keyPEM, v.actor(), v.source); err != nil {
		c.refused(w, r, v, err)
		return
	}
	done(w, r, "/console/apple/push-cert", "push-cert")
}

// formFile is the one file uploaded as field, read whole (the form is
// bounded by maxForm).
func formFile(f *multipart.Form, field string) ([]byte, error) {
	fhs := f.File[field]
	if len(fhs) != 1 {
		return nil, input.Errorf(field, "choose exactly one file")
	}
	file, err := fhs[0].Open()
	if err != nil {
		return nil, err
	}
	defer file.Close()
	return io.ReadAll(io.LimitReader(file, applemdm.MaxPushCertPEM+1))
}

// apnsAlert is the overview's line for those who may upload: the push
// certificate is missing, expired or within its last 30 days (urgent
// for the last two), so nobody has to visit the page to learn it.
type apnsAlert struct {
	Text   string
	Urgent bool
}

func (c *Console) pushCertAlert(ctx context.Context, v *visit) (*apnsAlert, error) {
	if c.pushCerts == nil || !c.allowed(v.user.Role, "GET /console/apple/push-cert") {
		return nil, nil
	}
	st, err := c.pushCerts.PushCertStatus(ctx)
	switch {
	case errors.Is(err, applemdm.ErrNoPushCert):
		return &apnsAlert{Text: "No APNs push certificate is stored: Apple devices can neither be enrolled nor woken."}, nil
	case err != nil:
		return nil, err
	case st.Expired:
		return &apnsAlert{Text: "The APNs push certificate expired on " + timefmt.Human(st.NotAfter) + ": no Apple device can be reached.", Urgent: true}, nil
	case st.Warning:
		return &apnsAlert{Text: fmt.Sprintf("The APNs push certificate expires in %d days, on %s.", st.DaysLeft, timefmt.Human(st.NotAfter)), Urgent: true}, nil
	}
	return nil, nil
}
