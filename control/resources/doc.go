// Package resources is the list of everything the API serves: for each kind,
// its names, scope and the strategy the generic registry applies to it
// (defaults and validation from control/defaults and control/validation,
// status and scale rules, selectable fields, graceful deletion).
//
// Adding a kind to the API means adding an entry here; no handler code
// changes.
package resources
