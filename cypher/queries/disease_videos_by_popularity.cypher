// name: disease_videos_by_popularity
// description: Videos whose latest profile predicts the disease, most popular (predicted) first.
// param: disease_id id - the disease (e.g. OVP:glaucoma)
// param: min_prob float[0..1] 0.0 lowest predicted probability of the disease to count a video as about it
// param: limit int[1..200] 20 how many videos to return

// The disease, by its unique id (constraint entity_id makes this an index seek).
MATCH (d:Entity:Disease {id: $disease_id})
// Only the latest profile of each video speaks for it; older model versions are history.
MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile {latest: true})-[pr:PREDICTS]->(d)
// Drop weak predictions when asked to.
WHERE pr.prob >= $min_prob
RETURN v.id AS video_id, v.title AS title, v.platform AS platform,
       p.popularity AS popularity, p.popularity_pct AS popularity_pct, p.quality AS quality,
       pr.prob AS prob, pr.rank AS rank
// Highest predicted engagement first; the id breaks ties so pages are stable.
ORDER BY popularity DESC, video_id
LIMIT $limit
