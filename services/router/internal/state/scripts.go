package state

// The Lua scripts that change the router's Redis state. Every change goes
// through one of them, so that each is atomic, and each first checks the
// tenant's ready key: after Redis lost its data, no script writes a
// partial state; the caller rebuilds the tenant from the view and tries
// again.
//
// Keys, under the prefix P and T = P.."t:"..tenant..":":
//   T.."ready"             the tenant's state is complete
//   T.."q:"..q..":wait"    zset: conversations waiting in queue q, by score
//                          (lowest first: see Score)
//   T.."q:"..q..":idle"    zset: agents of q who can take more, by the time
//                          of their last assignment (longest idle first)
//   T.."a:"..a             hash: routable (0/1), cap and load (thousandths),
//                          last (ms), queues, skills, langs (",x,y,")
//   T.."a:"..a..":held"    hash: conversation -> weight it counts for a
//   T.."c:"..c             hash: version, wq (its queue while it waits),
//                          score, skill, lang, weight, holders (",a,"),
//                          pend (its decision awaiting confirmation)
//   T.."c:"..c..":x"       set: agents excluded from its next offer
//   T.."fence:"..c         the last fencing token issued for c
//   P.."pending"           zset: decisions not yet confirmed by an event,
//                          "tenant|conversation|state_version" -> deadline
//
// An agent is available when routable (enabled, online as they set it,
// some capacity), connected (a heartbeat in the presence set within the
// window) and under capacity; only available agents are in idle sets, and
// pick checks again, since heartbeats age without any write.
//
// Numbers: capacities and weights are integers in thousandths, so that
// sums are exact; times are Unix milliseconds.

// lib is prepended to every script.
const lib = `
local P, tenant = ARGV[1], ARGV[2]
local T = P .. 't:' .. tenant .. ':'
if redis.call('EXISTS', T .. 'ready') == 0 then
	return redis.error_reply('NOSTATE tenant state is being rebuilt')
end
local function split(s)
	local out = {}
	for x in string.gmatch(s or '', '[^,]+') do out[#out + 1] = x end
	return out
end
local function has(list, x)
	return x == nil or x == false or x == '' or string.find(list or ',', ',' .. x .. ',', 1, true) ~= nil
end
local function available(a, pres, cutoff)
	local h = redis.call('HMGET', T .. 'a:' .. a, 'routable', 'cap', 'load')
	if h[1] ~= '1' then return false end
	local seen = redis.call('ZSCORE', pres, a)
	if not seen or tonumber(seen) < cutoff then return false end
	return tonumber(h[3] or '0') < tonumber(h[2] or '0')
end
-- refresh puts a in or out of its queues' idle sets; returns whether a
-- is available.
local function refresh(a, pres, cutoff)
	local k = T .. 'a:' .. a
	local ok = available(a, pres, cutoff)
	local last = redis.call('HGET', k, 'last') or '0'
	for _, q in ipairs(split(redis.call('HGET', k, 'queues'))) do
		if ok then
			redis.call('ZADD', T .. 'q:' .. q .. ':idle', 'NX', last, a)
		else
			redis.call('ZREM', T .. 'q:' .. q .. ':idle', a)
		end
	end
	return ok
end
local function hold(a, c, w)
	if redis.call('HSETNX', T .. 'a:' .. a .. ':held', c, w) == 1 then
		redis.call('HINCRBY', T .. 'a:' .. a, 'load', w)
	end
end
local function release(a, c)
	local w = redis.call('HGET', T .. 'a:' .. a .. ':held', c)
	if w then
		redis.call('HDEL', T .. 'a:' .. a .. ':held', c)
		redis.call('HINCRBY', T .. 'a:' .. a, 'load', -tonumber(w))
	end
end
`

// syncAgentScript stores what routing knows of an agent and puts them in
// or out of their queues' idle sets.
//
// ARGV: P, tenant, agent, routable, cap, queues, skills, langs, presence
// set, cutoff. Returns 1 when the agent is available.
const syncAgentScript = lib + `
local a = ARGV[3]
local k = T .. 'a:' .. a
for _, q in ipairs(split(redis.call('HGET', k, 'queues'))) do
	redis.call('ZREM', T .. 'q:' .. q .. ':idle', a)
end
redis.call('HSET', k, 'routable', ARGV[4], 'cap', ARGV[5], 'queues', ',' .. ARGV[6] .. ',', 'skills', ',' .. ARGV[7] .. ',', 'langs', ',' .. ARGV[8] .. ',')
if refresh(a, ARGV[9], tonumber(ARGV[10])) then return 1 end
return 0
`

// syncConversationScript makes the state of a conversation what its
// latest event says: who holds it (each holder's load counts its
// weight), in which queue it waits and with which score, which agents are
// excluded from its next offer. A decision awaiting confirmation is
// settled: the event confirms it or supersedes it.
//
// ARGV: P, tenant, conversation, state_version, version, wait queue (""
// when not waiting), score, skill, lang, weight, holders, excluded,
// presence set, cutoff. Returns the agents this freed who are now
// available, or false when the event is older than the state.
const syncConversationScript = lib + `
local c = ARGV[3]
local k = T .. 'c:' .. c
local sv, v = tonumber(ARGV[4]), tonumber(ARGV[5])
local cur = redis.call('HMGET', k, 'version', 'pend')
-- An event delivered again while a decision is pending says nothing new.
if cur[1] and (v < tonumber(cur[1]) or (v == tonumber(cur[1]) and cur[2])) then return false end
if cur[2] then redis.call('ZREM', P .. 'pending', cur[2]) end
local pres, cutoff, w = ARGV[13], tonumber(ARGV[14]), tonumber(ARGV[10])
local newh = split(ARGV[11])
local keep = {}
for _, a in ipairs(newh) do keep[a] = true end
local freed = {}
for _, a in ipairs(split(redis.call('HGET', k, 'holders'))) do
	if not keep[a] then
		release(a, c)
		if refresh(a, pres, cutoff) then freed[#freed + 1] = a end
	end
end
for _, a in ipairs(newh) do
	hold(a, c, w)
	refresh(a, pres, cutoff)
end
local oldq, wq = redis.call('HGET', k, 'wq'), ARGV[6]
if oldq and oldq ~= '' and oldq ~= wq then redis.call('ZREM', T .. 'q:' .. oldq .. ':wait', c) end
if wq ~= '' then redis.call('ZADD', T .. 'q:' .. wq .. ':wait', ARGV[7], c) end
redis.call('HSET', k, 'sv', ARGV[4], 'version', ARGV[5], 'wq', wq, 'score', ARGV[7], 'skill', ARGV[8], 'lang', ARGV[9], 'weight', ARGV[10], 'holders', ',' .. ARGV[11] .. ',')
redis.call('HDEL', k, 'pend')
local xk = k .. ':x'
redis.call('DEL', xk)
for _, a in ipairs(split(ARGV[12])) do redis.call('SADD', xk, a) end
return freed
`

// pickScript takes the first waiting conversation of a queue that an
// available agent can take, and the agent that has been idle longest
// among those who can (queue membership, required skill and language,
// room for its weight, not excluded unless nobody else can), and reserves
// the agent for it: the conversation leaves the wait set, the agent's
// load counts it, their idle time restarts, a fencing token is issued and
// the decision is pending until an event confirms it.
//
// ARGV: P, tenant, queue, now, presence set, cutoff, conversations to
// look at, agents to look at, confirmation deadline. Returns
// {conversation, agent, fence, state_version} or false.
const pickScript = lib + `
local q, now, pres, cutoff = ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local maxa = tonumber(ARGV[8])
local wait, idle = T .. 'q:' .. q .. ':wait', T .. 'q:' .. q .. ':idle'
local convs = redis.call('ZRANGE', wait, 0, tonumber(ARGV[7]) - 1)
if #convs == 0 then return false end
-- Idle agents are read lazily, 16 at a time, and each agent's hash and
-- heartbeat once: the first agent nearly always fits, and a pick costs a
-- few reads whatever the size of the team.
local ids, fetched, exhausted, cache, stale = {}, 0, false, {}, {}
local function agentAt(i)
	while i > #ids and not exhausted and fetched < maxa do
		local chunk = redis.call('ZRANGE', idle, fetched, fetched + 15)
		fetched = fetched + 16
		if #chunk < 16 then exhausted = true end
		for _, a in ipairs(chunk) do ids[#ids + 1] = a end
	end
	return ids[i]
end
local function info(a)
	local x = cache[a]
	if x == nil then
		local h = redis.call('HMGET', T .. 'a:' .. a, 'routable', 'cap', 'load', 'skills', 'langs')
		local seen = redis.call('ZSCORE', pres, a)
		if h[1] == '1' and seen and tonumber(seen) >= cutoff then
			x = {id = a, room = tonumber(h[2] or '0') - tonumber(h[3] or '0'), skills = h[4], langs = h[5]}
		else
			x = false
			stale[#stale + 1] = a
		end
		cache[a] = x
	end
	return x
end
local function finish()
	for _, a in ipairs(stale) do redis.call('ZREM', idle, a) end
end
for _, c in ipairs(convs) do
	local ch = redis.call('HMGET', T .. 'c:' .. c, 'skill', 'lang', 'weight', 'sv')
	local w = tonumber(ch[3] or '1000')
	local xk = T .. 'c:' .. c .. ':x'
	local excluded = redis.call('SCARD', xk) > 0
	local chosen
	for pass = 1, 2 do
		local i = 1
		while true do
			local a = agentAt(i)
			if not a then break end
			local ag = info(a)
			if ag and ag.room >= w and has(ag.skills, ch[1]) and has(ag.langs, ch[2])
				and (pass == 2 or not excluded or redis.call('SISMEMBER', xk, a) == 0) then
				chosen = ag
				break
			end
			i = i + 1
		end
		if chosen or not excluded then break end
	end
	if chosen then
		finish()
		local a = chosen.id
		redis.call('ZREM', wait, c)
		hold(a, c, w)
		redis.call('HSET', T .. 'a:' .. a, 'last', now)
		for _, qq in ipairs(split(redis.call('HGET', T .. 'a:' .. a, 'queues'))) do
			redis.call('ZADD', T .. 'q:' .. qq .. ':idle', 'XX', now, a)
		end
		refresh(a, pres, cutoff)
		local t = redis.call('TIME')
		local token = tonumber(t[1]) * 1000000 + tonumber(t[2])
		local fk = T .. 'fence:' .. c
		local last = tonumber(redis.call('GET', fk) or '0')
		if token <= last then token = last + 1 end
		local fence = string.format('%d', token)
		redis.call('SET', fk, fence, 'PX', 604800000)
		local sv = ch[4] or '0'
		local member = tenant .. '|' .. c .. '|' .. sv
		redis.call('ZADD', P .. 'pending', tonumber(ARGV[9]), member)
		redis.call('HSET', T .. 'c:' .. c, 'holders', ',' .. a .. ',', 'pend', member)
		return {c, a, fence, sv}
	end
	if #ids == 0 then break end
end
finish()
return false
`

// undoScript takes back a decision no event confirmed in time (the
// router died before sending its command, or the inbox refused it): the
// agent's reservation ends and the conversation waits again.
//
// ARGV: P, tenant, pending member, presence set, cutoff. Returns the
// queue the conversation waits in again, or false when the decision was
// settled meanwhile.
const undoScript = lib + `
local member = ARGV[3]
if redis.call('ZREM', P .. 'pending', member) == 0 then return false end
local c = string.match(member, '^[^|]*|([^|]*)|')
local k = T .. 'c:' .. c
if redis.call('HGET', k, 'pend') ~= member then return false end
for _, a in ipairs(split(redis.call('HGET', k, 'holders'))) do
	release(a, c)
	refresh(a, ARGV[4], tonumber(ARGV[5]))
end
redis.call('HSET', k, 'holders', ',,')
redis.call('HDEL', k, 'pend')
local wq = redis.call('HGET', k, 'wq')
if not wq or wq == '' then return false end
redis.call('ZADD', T .. 'q:' .. wq .. ':wait', redis.call('HGET', k, 'score') or '0', c)
return wq
`
