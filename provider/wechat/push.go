package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Message push (消息推送) of an official account: WeChat calls the
// account's server URL with GET for the URL check and POST for each
// message or event, signed with the push token configured in the console,
// in plaintext, compatible or safe (AES) mode.
//
// https://developers.weixin.qq.com/doc/service/en/Basic_Information/Access_Overview.html
// https://developers.weixin.qq.com/doc/oplatform/en/Third-party_Platforms/Message_Encryption/Technical_Plan.html

// PushMode is how an official account's pushes are sent (the console's
// 消息加解密方式).
type PushMode string

// The push modes.
const (
	// PushPlaintext (明文模式): XML in clear; only token, timestamp and
	// nonce are signed, not the body.
	PushPlaintext PushMode = "plaintext"
	// PushCompatible (兼容模式): the body has the clear fields and
	// <Encrypt>; replies may be either.
	PushCompatible PushMode = "compatible"
	// PushSafe (安全模式): the body is ciphertext, signed by msg_signature.
	PushSafe PushMode = "safe"
)

// Errors of [PushReceiver]. Callers branch on them with errors.Is.
var (
	// ErrPushSignature: signature or msg_signature is missing or wrong.
	ErrPushSignature = errors.New("wechat: push: bad signature")
	// ErrPushStale: the timestamp is outside the receiver's window.
	ErrPushStale = errors.New("wechat: push: timestamp outside the allowed window")
	// ErrPushMalformed: the body is not a push WeChat would send (XML,
	// Base64, AES block or padding, length field).
	ErrPushMalformed = errors.New("wechat: push: malformed message")
	// ErrPushAppID: the decrypted message names another appid, or its
	// ToUserName differs from the clear one.
	ErrPushAppID = errors.New("wechat: push: message is for another app")
	// ErrPushMode: a plaintext push reached a receiver in safe mode, or an
	// encrypted one a receiver without a key.
	ErrPushMode = errors.New("wechat: push: message mode not accepted")
)

// PushSignature is WeChat's push signature: the lowercase hex SHA-1 of the
// parts sorted as byte strings and concatenated. signature is
// PushSignature(token, timestamp, nonce); msg_signature (safe mode) is
// PushSignature(token, timestamp, nonce, encrypt).
func PushSignature(parts ...string) string {
	s := append([]string(nil), parts...)
	sort.Strings(s)
	h := sha1.New()
	for _, p := range s {
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func signatureOK(got string, parts ...string) bool {
	want := PushSignature(parts...)
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// pushBlockSize is the PKCS#7 block size WeChat pads to (twice AES's).
const pushBlockSize = 32

// PushCipher encrypts and decrypts safe-mode messages of one app with its
// EncodingAESKey: AES-256-CBC, IV = the key's first 16 bytes, plaintext
// random(16) ‖ length (4 bytes, big-endian) ‖ message ‖ appid, PKCS#7
// padding to 32-byte blocks, standard Base64. Safe for concurrent use.
type PushCipher struct {
	appID string
	block cipher.Block
	iv    []byte
}

// NewPushCipher returns the cipher of appID for encodingAESKey, the 43
// letters and digits shown in WeChat's console. The key's last character
// carries two unused bits, which are ignored (WeChat's keys often set
// them, so a strict Base64 decoder would refuse them).
func NewPushCipher(appID, encodingAESKey string) (*PushCipher, error) {
	key, err := DecodeEncodingAESKey(encodingAESKey)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("wechat: EncodingAESKey: %w", err)
	}
	return &PushCipher{appID: appID, block: b, iv: key[:aes.BlockSize]}, nil
}

// DecodeEncodingAESKey returns the 32-byte AES key of an EncodingAESKey,
// or an error saying what is wrong with it (never the key itself).
func DecodeEncodingAESKey(k string) ([]byte, error) {
	if len(k) != 43 {
		return nil, fmt.Errorf("wechat: EncodingAESKey must be 43 characters, not %d", len(k))
	}
	for i := range len(k) {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return nil, fmt.Errorf("wechat: EncodingAESKey must be letters and digits only (character %d is not)", i+1)
		}
	}
	key, err := base64.StdEncoding.DecodeString(k + "=")
	if err != nil || len(key) != 32 {
		return nil, errors.New("wechat: EncodingAESKey is not Base64 of 32 bytes")
	}
	return key, nil
}

// Encrypt seals msg for the <Encrypt> element. random is the 16-byte
// prefix; nil draws it from crypto/rand.
func (c *PushCipher) Encrypt(msg, random []byte) (string, error) {
	if random == nil {
		random = make([]byte, 16)
		rand.Read(random)
	}
	if len(random) != 16 {
		return "", errors.New("wechat: push: random prefix must be 16 bytes")
	}
	n := 20 + len(msg) + len(c.appID)
	pad := pushBlockSize - n%pushBlockSize
	buf := make([]byte, 0, n+pad)
	buf = append(buf, random...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(msg)))
	buf = append(buf, msg...)
	buf = append(buf, c.appID...)
	buf = append(buf, bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(c.block, c.iv).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}

// Decrypt opens an <Encrypt> value and returns the message. It checks the
// block structure, the padding, the length field and that the trailing
// appid is the cipher's; it never panics, whatever the input. Call it only
// after msg_signature has been verified.
func (c *PushCipher) Decrypt(encrypted string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encrypted))
	if err != nil {
		return nil, fmt.Errorf("%w: Encrypt is not Base64", ErrPushMalformed)
	}
	if len(ct) < pushBlockSize || len(ct)%pushBlockSize != 0 {
		return nil, fmt.Errorf("%w: ciphertext of %d bytes is not whole 32-byte blocks", ErrPushMalformed, len(ct))
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(c.block, c.iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > pushBlockSize {
		return nil, fmt.Errorf("%w: bad padding", ErrPushMalformed)
	}
	for _, b := range pt[len(pt)-pad:] {
		if int(b) != pad {
			return nil, fmt.Errorf("%w: bad padding", ErrPushMalformed)
		}
	}
	pt = pt[:len(pt)-pad]
	if len(pt) < 20 {
		return nil, fmt.Errorf("%w: too short", ErrPushMalformed)
	}
	n := binary.BigEndian.Uint32(pt[16:20])
	if uint64(n) > uint64(len(pt)-20) {
		return nil, fmt.Errorf("%w: length field beyond the message", ErrPushMalformed)
	}
	msg, appID := pt[20:20+n], pt[20+n:]
	if subtle.ConstantTimeCompare(appID, []byte(c.appID)) != 1 {
		return nil, ErrPushAppID
	}
	return msg, nil
}

// PushMessage is a pushed message or event (plaintext XML, or safe mode's
// decrypted XML). Fields WeChat leaves out are zero.
type PushMessage struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   string   `xml:"ToUserName"`   // the account's original ID (gh_…)
	FromUserName string   `xml:"FromUserName"` // the person's openid under this account
	CreateTime   int64    `xml:"CreateTime"`
	MsgType      string   `xml:"MsgType"` // "event", "text", …
	Event        string   `xml:"Event"`   // subscribe, unsubscribe, SCAN, …
	EventKey     string   `xml:"EventKey"`
	Ticket       string   `xml:"Ticket"`
	MsgID        int64    `xml:"MsgId"`
	Content      string   `xml:"Content"`
	// Encrypt is the ciphertext of compatible and safe mode.
	Encrypt string `xml:"Encrypt"`
}

// MaxPushBody bounds the body of a push that [ParsePushMessage] accepts.
// WeChat's event pushes are well under 2 KiB; text messages are limited
// to about 2 KiB of content.
const MaxPushBody = 64 << 10

// ParsePushMessage decodes a push body. The root element must be <xml>;
// CreateTime and MsgId must be integers when present. It never panics.
func ParsePushMessage(body []byte) (*PushMessage, error) {
	if len(body) > MaxPushBody {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds %d", ErrPushMalformed, len(body), MaxPushBody)
	}
	var m PushMessage
	if err := xml.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrPushMalformed, xmlErr(err))
	}
	return &m, nil
}

// xmlErr describes an XML error without echoing the input (which may hold
// an openid).
func xmlErr(err error) string {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return "XML syntax error on line " + strconv.Itoa(se.Line)
	}
	var ue xml.UnmarshalError
	if errors.As(err, &ue) {
		return "unexpected XML structure"
	}
	if errors.Is(err, strconv.ErrSyntax) || errors.Is(err, strconv.ErrRange) {
		return "a number field is not an integer"
	}
	return "not an XML message"
}

// Event names (compare case-insensitively: WeChat spells SCAN upper case).
const (
	EventSubscribe   = "subscribe"
	EventUnsubscribe = "unsubscribe"
	EventScan        = "SCAN"
)

// sceneEventPrefix prefixes the EventKey of a subscribe caused by scanning
// a parametric QR code.
const sceneEventPrefix = "qrscene_"

// QRScene returns the scene of a parametric QR code this message reports
// a scan of: a subscribe event with EventKey qrscene_SCENE (a new
// follower) or a SCAN event with EventKey SCENE (a follower), both with a
// Ticket. ok is false for every other message, including a plain follow.
func (m *PushMessage) QRScene() (scene string, ok bool) {
	if !strings.EqualFold(m.MsgType, "event") || m.Ticket == "" {
		return "", false
	}
	switch {
	case strings.EqualFold(m.Event, EventSubscribe):
		scene, ok = strings.CutPrefix(m.EventKey, sceneEventPrefix)
		if !ok || scene == "" {
			return "", false
		}
		return scene, true
	case strings.EqualFold(m.Event, EventScan):
		return m.EventKey, m.EventKey != ""
	}
	return "", false
}

// DedupKey identifies the message across WeChat's retries (which resend
// the same body): MsgId for ordinary messages, and for events the sender,
// CreateTime, event, key and ticket (FromUserName + CreateTime as WeChat
// suggests, plus enough that a subscribe and a SCAN in one second stay
// apart). It is a hex SHA-256, so it holds no personal data.
func (m *PushMessage) DedupKey() string {
	var s string
	if m.MsgID != 0 {
		s = "msg\x00" + strconv.FormatInt(m.MsgID, 10)
	} else {
		s = strings.Join([]string{"event", m.FromUserName, strconv.FormatInt(m.CreateTime, 10),
			strings.ToLower(m.Event), m.EventKey, m.Ticket}, "\x00")
	}
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// cdata marshals as a CDATA section, as WeChat writes text fields.
type cdata struct {
	Value string `xml:",cdata"`
}

// TextReply is a passive text reply (被动回复) to a message.
type TextReply struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   cdata    `xml:"ToUserName"`
	FromUserName cdata    `xml:"FromUserName"`
	CreateTime   int64    `xml:"CreateTime"`
	MsgType      cdata    `xml:"MsgType"`
	Content      cdata    `xml:"Content"`
}

// NewTextReply returns the XML of a passive text reply to m: the names
// swapped, created at now.
func (m *PushMessage) NewTextReply(content string, now time.Time) []byte {
	b, _ := xml.Marshal(TextReply{
		ToUserName:   cdata{m.FromUserName},
		FromUserName: cdata{m.ToUserName},
		CreateTime:   now.Unix(),
		MsgType:      cdata{"text"},
		Content:      cdata{content},
	})
	return b
}

// EncryptedEnvelope is the XML of a safe-mode reply, and (with ToUserName
// instead of the signature fields) of a safe-mode push.
type EncryptedEnvelope struct {
	XMLName      xml.Name `xml:"xml"`
	Encrypt      string   `xml:"Encrypt"`
	MsgSignature string   `xml:"MsgSignature"`
	TimeStamp    string   `xml:"TimeStamp"`
	Nonce        string   `xml:"Nonce"`
}

type encryptedEnvelopeOut struct {
	XMLName      xml.Name `xml:"xml"`
	Encrypt      cdata    `xml:"Encrypt"`
	MsgSignature cdata    `xml:"MsgSignature"`
	TimeStamp    string   `xml:"TimeStamp"`
	Nonce        cdata    `xml:"Nonce"`
}

// encryptedPushOut is a safe-mode push body.
type encryptedPushOut struct {
	XMLName    xml.Name `xml:"xml"`
	ToUserName cdata    `xml:"ToUserName"`
	Encrypt    cdata    `xml:"Encrypt"`
}

// PushReceiver verifies and opens the pushes of one official account.
// Configure it through its fields before first use; it is then safe for
// concurrent use.
type PushReceiver struct {
	// AppID is the account's appid (safe mode checks it in every message).
	AppID string
	// Token is the push token (Token in the console). It is a secret:
	// never log it.
	Token string
	// Mode is what the receiver accepts: plaintext pushes only
	// (PushPlaintext, the zero value), plaintext or encrypted
	// (PushCompatible), or encrypted only (PushSafe).
	Mode PushMode
	// Cipher opens encrypted pushes; required for compatible and safe mode.
	Cipher *PushCipher
	// PreviousCipher, when set, opens pushes still sealed with the
	// EncodingAESKey the account had before the current one, while WeChat
	// switches over after a key change in the console.
	PreviousCipher *PushCipher
	// MaxSkew is how far the timestamp of a push may be from now; 0 means
	// 5 minutes. Retries of a push reuse its timestamp, so it must exceed
	// WeChat's retry window (about 15 s).
	MaxSkew time.Duration
}

// DefaultPushMaxSkew is PushReceiver.MaxSkew's default.
const DefaultPushMaxSkew = 5 * time.Minute

// VerifyURL checks the GET of WeChat's URL check (signature over token,
// timestamp and nonce) and returns the echostr to answer with, unchanged.
// The URL check is not encrypted in any mode, and has no timestamp window:
// the console sends it once when the URL is saved.
func (r *PushReceiver) VerifyURL(q url.Values) (string, error) {
	if !signatureOK(q.Get("signature"), r.Token, q.Get("timestamp"), q.Get("nonce")) {
		return "", ErrPushSignature
	}
	return q.Get("echostr"), nil
}

// Opened is a verified push.
type Opened struct {
	Message *PushMessage
	// Encrypted reports whether the message came encrypted; the reply
	// must then be sealed with [PushReceiver.SealReply].
	Encrypted bool
	// Timestamp and Nonce are the query's, for the reply's signature.
	Timestamp, Nonce string
	// cipher opened the message (nil for plaintext); replies are sealed
	// with the same key.
	cipher *PushCipher
}

// Open verifies a POSTed push (query q, body) at now and returns its
// message: signature (every mode), the timestamp window, then for
// encrypt_type=aes msg_signature over the ciphertext, decryption, the
// appid inside and ToUserName in and out. Errors wrap one of the ErrPush
// values and never quote the body.
func (r *PushReceiver) Open(q url.Values, body []byte, now time.Time) (*Opened, error) {
	ts, nonce := q.Get("timestamp"), q.Get("nonce")
	if !signatureOK(q.Get("signature"), r.Token, ts, nonce) {
		return nil, ErrPushSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: timestamp is not a number", ErrPushStale)
	}
	skew := r.MaxSkew
	if skew <= 0 {
		skew = DefaultPushMaxSkew
	}
	if d := now.Sub(time.Unix(sec, 0)); d > skew || d < -skew {
		return nil, ErrPushStale
	}
	outer, err := ParsePushMessage(body)
	if err != nil {
		return nil, err
	}
	encrypted := false
	switch q.Get("encrypt_type") {
	case "", "raw":
	case "aes":
		encrypted = true
	default:
		return nil, fmt.Errorf("%w: unknown encrypt_type", ErrPushMode)
	}
	o := &Opened{Message: outer, Encrypted: encrypted, Timestamp: ts, Nonce: nonce}
	if !encrypted {
		if r.Mode == PushSafe {
			return nil, fmt.Errorf("%w: plaintext push in safe mode", ErrPushMode)
		}
		if outer.MsgType == "" {
			return nil, fmt.Errorf("%w: MsgType missing", ErrPushMalformed)
		}
		return o, nil
	}
	if r.Cipher == nil || r.Mode == PushPlaintext || r.Mode == "" {
		return nil, fmt.Errorf("%w: encrypted push without a configured EncodingAESKey", ErrPushMode)
	}
	if outer.Encrypt == "" {
		return nil, fmt.Errorf("%w: Encrypt missing", ErrPushMalformed)
	}
	if !signatureOK(q.Get("msg_signature"), r.Token, ts, nonce, outer.Encrypt) {
		return nil, ErrPushSignature
	}
	o.cipher = r.Cipher
	plain, err := r.Cipher.Decrypt(outer.Encrypt)
	if err != nil && r.PreviousCipher != nil {
		// Sealed with the previous key? (The signature does not depend on
		// the key, so only decryption tells.)
		if p, perr := r.PreviousCipher.Decrypt(outer.Encrypt); perr == nil {
			plain, err, o.cipher = p, nil, r.PreviousCipher
		}
	}
	if err != nil {
		return nil, err
	}
	inner, err := ParsePushMessage(plain)
	if err != nil {
		return nil, err
	}
	if outer.ToUserName != "" && inner.ToUserName != outer.ToUserName {
		return nil, ErrPushAppID
	}
	if inner.MsgType == "" {
		return nil, fmt.Errorf("%w: MsgType missing", ErrPushMalformed)
	}
	o.Message = inner
	return o, nil
}

// SealReply encrypts a passive reply with the current key and returns the
// envelope XML, signed over token, timestamp, nonce and the ciphertext.
// Replies to an opened push should use [PushReceiver.SealReplyTo].
func (r *PushReceiver) SealReply(reply []byte, timestamp, nonce string) ([]byte, error) {
	return r.seal(r.Cipher, reply, timestamp, nonce)
}

// SealReplyTo encrypts a passive reply to the encrypted push o, with the
// key that opened it (the previous one while WeChat switches keys).
func (r *PushReceiver) SealReplyTo(o *Opened, reply []byte) ([]byte, error) {
	c := o.cipher
	if c == nil {
		c = r.Cipher
	}
	return r.seal(c, reply, o.Timestamp, o.Nonce)
}

func (r *PushReceiver) seal(c *PushCipher, reply []byte, timestamp, nonce string) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no EncodingAESKey to seal a reply", ErrPushMode)
	}
	enc, err := c.Encrypt(reply, nil)
	if err != nil {
		return nil, err
	}
	return xml.Marshal(encryptedEnvelopeOut{
		Encrypt:      cdata{enc},
		MsgSignature: cdata{PushSignature(r.Token, timestamp, nonce, enc)},
		TimeStamp:    timestamp,
		Nonce:        cdata{nonce},
	})
}

// SealPush is the sender's side of safe mode (WeChat's, or a simulator's):
// it encrypts msg for the account toUserName and returns the body and the
// msg_signature for the query.
func (c *PushCipher) SealPush(token, toUserName, timestamp, nonce string, msg []byte) (body []byte, msgSignature string, err error) {
	enc, err := c.Encrypt(msg, nil)
	if err != nil {
		return nil, "", err
	}
	body, err = xml.Marshal(encryptedPushOut{ToUserName: cdata{toUserName}, Encrypt: cdata{enc}})
	if err != nil {
		return nil, "", err
	}
	return body, PushSignature(token, timestamp, nonce, enc), nil
}

// OpenReply is the sender's side of a reply: it verifies and decrypts a
// safe-mode reply envelope and returns the reply XML.
func (c *PushCipher) OpenReply(token string, envelope []byte) ([]byte, error) {
	if len(envelope) > MaxPushBody {
		return nil, fmt.Errorf("%w: reply too large", ErrPushMalformed)
	}
	var e EncryptedEnvelope
	if err := xml.Unmarshal(envelope, &e); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrPushMalformed, xmlErr(err))
	}
	if e.Encrypt == "" {
		return nil, fmt.Errorf("%w: Encrypt missing", ErrPushMalformed)
	}
	if !signatureOK(e.MsgSignature, token, e.TimeStamp, e.Nonce, e.Encrypt) {
		return nil, ErrPushSignature
	}
	return c.Decrypt(e.Encrypt)
}

// PushEvent is a scan event as WeChat pushes it (plaintext XML), for
// simulators and tests: the sender's side of [ParsePushMessage].
type PushEvent struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   cdata    `xml:"ToUserName"`
	FromUserName cdata    `xml:"FromUserName"`
	CreateTime   int64    `xml:"CreateTime"`
	MsgType      cdata    `xml:"MsgType"`
	Event        cdata    `xml:"Event"`
	EventKey     *cdata   `xml:"EventKey,omitempty"`
	Ticket       *cdata   `xml:"Ticket,omitempty"`
}

// NewPushEvent returns the XML of an event push; eventKey and ticket are
// left out when empty.
func NewPushEvent(toUserName, fromUserName string, createTime int64, event, eventKey, ticket string) []byte {
	e := PushEvent{
		ToUserName: cdata{toUserName}, FromUserName: cdata{fromUserName}, CreateTime: createTime,
		MsgType: cdata{"event"}, Event: cdata{event},
	}
	if eventKey != "" {
		e.EventKey = &cdata{eventKey}
	}
	if ticket != "" {
		e.Ticket = &cdata{ticket}
	}
	b, _ := xml.Marshal(e)
	return b
}
