package resamania

import (
	"strconv"
	"strings"
)

// Contact states. A new contact is a prospect unless created as temp.
const (
	StateProspect  = "prospect"   // default for a new contact
	StateTemp      = "temp"       // temporary contact, target of a migration
	StateClient    = "client"     // has a contract: cannot be migrated or transferred
	StateOldClient = "old_client" // former client: may be transferred
)

// Contact is a Resamania contact (an http://schema.org/Person) as GET
// /contacts and POST /contacts return it. Fields the vendor sends as null
// are empty.
type Contact struct {
	ID         string   `json:"@id"`                 // the IRI, e.g. "/demoapi/contacts/2974221": the id for later calls
	Number     string   `json:"number"`              // the contact number shown to staff, e.g. "C2974221"
	Email      string   `json:"email"`               // unique per clientToken
	GivenName  string   `json:"givenName"`           //
	FamilyName string   `json:"familyName"`          //
	BirthDate  string   `json:"birthDate"`           // YYYY-MM-DD
	Gender     string   `json:"gender"`              // "male", "female" or empty
	State      string   `json:"state"`               // StateProspect, StateTemp, StateClient, StateOldClient
	ClubID     string   `json:"clubId"`              // club IRI, e.g. "/demoapi/clubs/1357"
	Mobile     string   `json:"mobile"`              // E.164
	SourceID   string   `json:"sourceId,omitempty"`  // source IRI, if any
	Address    *Address `json:"address,omitempty"`   // nil when the vendor has none
	PictureID  string   `json:"pictureId,omitempty"` //
	Landline   string   `json:"landline,omitempty"`  //
}

// Address is a contact's postal address. In a NewContact only the four
// fields without a server-side meaning (country, locality, street, postal
// code) are sent; ID and AddressCountryISO are filled in by the vendor.
type Address struct {
	ID                string `json:"@id,omitempty"`
	AddressCountry    string `json:"addressCountry,omitempty"`
	AddressCountryISO string `json:"addressCountryIso,omitempty"`
	AddressLocality   string `json:"addressLocality,omitempty"`
	PostalCode        string `json:"postalCode,omitempty"`
	StreetAddress     string `json:"streetAddress,omitempty"`
	Supplement        string `json:"supplement,omitempty"`
}

// NetworkContact is the limited view of a contact that
// GET /network/contact_search returns for any club of the network: no email,
// no address, the phone number masked.
type NetworkContact struct {
	ID                 string `json:"@id"`
	Number             string `json:"number"`
	BirthDate          string `json:"birthDate"`
	FamilyName         string `json:"familyName"`
	GivenName          string `json:"givenName"`
	Gender             string `json:"gender"`
	PictureID          string `json:"pictureId,omitempty"`
	ClubID             string `json:"clubId"`             // the contact's club IRI: where a migration or transfer starts
	State              string `json:"state"`              // see the State constants
	PartialPhoneNumber string `json:"partialPhoneNumber"` // e.g. "******1615"
}

// NewContact is the body of POST /contacts. Which fields are required
// depends on the clientToken's configuration; by default FamilyName,
// GivenName, BirthDate and Email. Empty fields are not sent.
type NewContact struct {
	FamilyName string   `json:"familyName,omitempty"`
	GivenName  string   `json:"givenName,omitempty"`
	BirthDate  string   `json:"birthDate,omitempty"` // YYYY-MM-DD
	Email      string   `json:"email,omitempty"`
	Gender     string   `json:"gender,omitempty"`   // "male" or "female"
	ClubID     string   `json:"clubId,omitempty"`   // club IRI; a bare id is refused
	Mobile     string   `json:"mobile,omitempty"`   // E.164, e.g. "+33612345678"
	SourceID   string   `json:"sourceId,omitempty"` // source IRI (GET/POST /referentials/sources)
	State      string   `json:"state,omitempty"`    // StateProspect (default) or StateTemp
	Address    *Address `json:"address,omitempty"`
}

// collection is a Hydra collection of T.
type collection[T any] struct {
	Members    []T `json:"hydra:member"`
	TotalItems int `json:"hydra:totalItems"`
}

// ClubIRI returns the IRI of club id under clientToken: "/{clientToken}/clubs/{id}".
func ClubIRI(clientToken string, id int) string {
	return "/" + clientToken + "/clubs/" + strconv.Itoa(id)
}

// NetworkNodeIRI returns the IRI of network node id under clientToken:
// "/{clientToken}/network_nodes/{id}".
func NetworkNodeIRI(clientToken string, id int) string {
	return "/" + clientToken + "/network_nodes/" + strconv.Itoa(id)
}

// ContactIRI returns the IRI of contact id under clientToken:
// "/{clientToken}/contacts/{id}".
func ContactIRI(clientToken string, id int) string {
	return "/" + clientToken + "/contacts/" + strconv.Itoa(id)
}

// IDFromIRI returns the numeric id at the end of an IRI of kind collection
// ("clubs", "contacts", "network_nodes", …) under clientToken, and whether
// iri is such an IRI. A bare id ("1357") is not an IRI.
func IDFromIRI(clientToken, collection, iri string) (int, bool) {
	rest, ok := strings.CutPrefix(iri, "/"+clientToken+"/"+collection+"/")
	if !ok || rest == "" || strings.ContainsAny(rest, "/+-") {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n > 0
}
