package main

import (
	"errors"
	"fmt"
	"net/http"
)

// Exit codes scripts can trust.
const (
	exitOK        = 0
	exitFailed    = 1 // network, server error, anything else
	exitUsage     = 2 // the command line was wrong
	exitDenied    = 3 // 401 or 403: no key, or the role may not
	exitNotFound  = 4 // 404
	exitRefused   = 5 // 400 or 409: the server refused the request as asked
	exitAuditFail = 6 // audit verify found the chain broken
	exitReceipt   = 7 // receipt verify: the receipt is not proof
)

// apiError is an answer of 300 or more.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Msg)
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// errAuditBroken: the trail did not verify.
var errAuditBroken = errors.New("the audit chain does not verify")

func exitCode(err error) int {
	var ae *apiError
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errAuditBroken):
		return exitAuditFail
	case errors.Is(err, errReceiptUnverified):
		return exitReceipt
	case errors.As(err, &ae):
		switch ae.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			return exitDenied
		case http.StatusNotFound:
			return exitNotFound
		case http.StatusBadRequest, http.StatusConflict:
			return exitRefused
		}
	}
	return exitFailed
}
