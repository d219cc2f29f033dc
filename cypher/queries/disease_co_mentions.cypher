// name: disease_co_mentions
// description: Diseases most often mentioned in the same videos as the given disease (negated mentions ignored).
// param: disease_id id - the disease (e.g. OVP:myopia)
// param: limit int[1..100] 10 how many diseases to return

MATCH (d:Entity:Disease {id: $disease_id})
// Videos that mention the disease affirmatively ("not glaucoma" does not count).
MATCH (v:Video)-[m:MENTIONS]->(d)
WHERE NOT coalesce(m.negated, false)
// Every other disease those videos mention affirmatively.
MATCH (v)-[m2:MENTIONS]->(other:Disease)
WHERE other <> d AND NOT coalesce(m2.negated, false)
// One count per video, however often it repeats the other disease.
WITH other, count(DISTINCT v) AS videos
RETURN other.id AS id, other.name AS name, other.name_zh AS name_zh, videos
ORDER BY videos DESC, id
LIMIT $limit
