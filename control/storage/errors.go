package storage

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Messages match kube-apiserver's so clients (and people) see the same text.
const (
	listExpiredMsg  = "The resourceVersion for the provided list is too old."
	watchExpiredMsg = "The resourceVersion for the provided watch is too old."
	continueExpired = "The provided continue parameter is too old " +
		"to display a consistent list result. You can start a new list without " +
		"the continue parameter."
	inconsistentContinue = "The provided continue parameter is too old " +
		"to display a consistent list result. You can start a new list without " +
		"the continue parameter, or use the continue token in this response to " +
		"retrieve the remainder of the results. Continuing with the provided " +
		"token results in an inconsistent list - objects that were created, " +
		"modified, or deleted between the time the first chunk was returned " +
		"and now may show up in the list."
	optimisticLockMsg = "the object has been modified; please apply your changes to the latest version and try again"
)

// internalError turns an etcd or context failure into an API error.
func internalError(err error) error {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return apierrors.NewTimeoutError(fmt.Sprintf("storage request timed out: %v", err), 1)
	case errors.Is(err, context.Canceled):
		return apierrors.NewTimeoutError(fmt.Sprintf("storage request canceled: %v", err), 0)
	}
	return apierrors.NewInternalError(err)
}

func isCompacted(err error) bool {
	return errors.Is(err, rpctypes.ErrCompacted)
}

func isFutureRev(err error) bool {
	return errors.Is(err, rpctypes.ErrFutureRev)
}

// tooLargeRV is kube-apiserver's answer when a requested resourceVersion is
// newer than anything the server has seen within its wait budget.
func tooLargeRV(want, have int64) error {
	err := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", want, have), 1)
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{
		Type:    metav1.CauseTypeResourceVersionTooLarge,
		Message: "Too large resource version",
	}}
	return err
}

// tooOldRV is the watch cache's 410 for a version it no longer has events
// after.
func tooOldRV(want, oldest int64) *apierrors.StatusError {
	return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", want, oldest))
}
