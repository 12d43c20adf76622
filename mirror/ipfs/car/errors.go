package car

import "errors"

// ErrFinished is returned by Add and PutBlock after Finish, and by Finish
// when it is called twice.
var ErrFinished = errors.New("car: the CAR file is already finished")

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("car: store closed")

// ErrNoRoots is returned by Finish without a root: a CAR names at least one.
var ErrNoRoots = errors.New("car: a CAR file needs at least one root")
