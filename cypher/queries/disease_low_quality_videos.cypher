// name: disease_low_quality_videos
// description: Videos about the disease whose latest profile predicts a low Global Quality Score (worst first): candidates for review.
// param: disease_id id - the disease (e.g. OVP:cataract)
// param: max_quality int[1..5] 2 highest GQS (1-5) still counted as low quality
// param: limit int[1..200] 20 how many videos to return

MATCH (d:Entity:Disease {id: $disease_id})
// A video is about the disease when its latest profile predicts it.
MATCH (v:Video)-[:HAS_PROFILE]->(p:Profile {latest: true})-[pr:PREDICTS]->(d)
WHERE p.quality <= $max_quality
RETURN v.id AS video_id, v.title AS title, v.platform AS platform,
       p.quality AS quality, p.quality_probs AS quality_probs,
       p.popularity_pct AS popularity_pct, pr.prob AS prob
// Worst quality first; among equals, the most popular ones do the most harm, so they come first.
ORDER BY quality ASC, popularity_pct DESC, video_id
LIMIT $limit
